// Synthesizes text and transcribes the audio again, both through the speechmesh gateway:
// TextToSpeech/StreamingSynthesize (server streaming), then SpeechToText/StreamingRecognize
// (bidi, config first) fed with the synthesized chunks as they arrive.
// Usage: node round_trip.js HOST:PORT "Some text."   (npm install @grpc/grpc-js @grpc/proto-loader)
const path = require("path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const PROTOS = path.resolve(__dirname, "../../protos");
const files = ["speechmesh/tts/v1/tts.proto", "speechmesh/stt/v1/stt.proto"];
const definition = protoLoader.loadSync(
  files.map((f) => path.join(PROTOS, f)),
  { includeDirs: [PROTOS], longs: Number, enums: String, defaults: true },
);
const speechmesh = grpc.loadPackageDefinition(definition).speechmesh;

const [address, text] = process.argv.slice(2);
const credentials = grpc.credentials.createInsecure();
const tts = new speechmesh.tts.v1.TextToSpeech(address, credentials);
const stt = new speechmesh.stt.v1.SpeechToText(address, credentials);

function fail(where, error) {
  console.error(`${where}: ${grpc.status[error.code]}: ${error.details}`);
  process.exit(1);
}

const recognition = stt.StreamingRecognize();
const finals = [];
recognition.on("data", (response) => {
  for (const result of response.results.filter((r) => r.isFinal)) {
    finals.push(result.alternatives[0].transcript);
  }
  if (response.endOfStream) {
    console.log(`transcript: ${finals.join(" ")}`);
    console.log(`samples: ${response.processedSamples} at ${response.sampleRateHz} Hz`);
  }
});
recognition.on("error", (error) => fail("StreamingRecognize", error));

let configured = false;
let chunks = 0;
const synthesis = tts.StreamingSynthesize({
  text,
  outputFormat: { encoding: "AUDIO_ENCODING_PCM_S16LE", sampleRateHz: 16000 },
});
synthesis.on("data", (response) => {
  if (!response.chunk) return;
  if (!configured) {
    configured = true;
    recognition.write({
      config: { format: response.chunk.format, options: { wordTimestamps: true } },
    });
  }
  chunks += 1;
  recognition.write({ audio: { data: response.chunk.audio.data } });
});
synthesis.on("error", (error) => fail("StreamingSynthesize", error));
synthesis.on("end", () => {
  console.log(`chunks: ${chunks}`);
  recognition.end();
});
