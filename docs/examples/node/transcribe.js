// Streams a 16-bit PCM WAV file to speechmesh's SpeechToText service at real-time pace
// and prints interim text as it changes, then each final with its word offsets.
// Usage: node transcribe.js FILE.wav [HOST:PORT] [--fast]
//        (npm install @grpc/grpc-js @grpc/proto-loader)
const fs = require("fs");
const path = require("path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const PROTOS = path.resolve(__dirname, "../../../protos");
const definition = protoLoader.loadSync(path.join(PROTOS, "speechmesh/stt/v1/stt.proto"), {
  includeDirs: [PROTOS],
  longs: Number,
  enums: String,
  defaults: true,
});
const stt = grpc.loadPackageDefinition(definition).speechmesh.stt.v1;

const args = process.argv.slice(2);
const fast = args.includes("--fast");
const [file, address = "127.0.0.1:50051"] = args.filter((a) => a !== "--fast");
const client = new stt.SpeechToText(address, grpc.credentials.createInsecure());
const metadata = new grpc.Metadata();
if (process.env.SPEECHMESH_API_KEY) {
  metadata.set("authorization", `Bearer ${process.env.SPEECHMESH_API_KEY}`);
}

const wav = fs.readFileSync(file);
const byteRate = wav.readUInt32LE(28); // WAV header: bytes per second of audio
const chunkBytes = Math.floor(byteRate / 10); // 100 ms per message

const call = client.StreamingRecognize(metadata);
call.on("data", (response) => {
  if (response.speechEvent && response.speechEvent.type === "SPEECH_EVENT_TYPE_START") {
    console.log(`speech start ${(response.speechEvent.startMs / 1000).toFixed(2)} s`);
  }
  const interim = response.results.filter((r) => !r.isFinal);
  if (interim.length) {
    console.log(`… ${interim.map((r) => r.alternatives[0].transcript).join(" ")}`);
  }
  for (const result of response.results.filter((r) => r.isFinal)) {
    const words = result.alternatives[0].words
      .map((w) => `${w.word}@${(w.startMs / 1000).toFixed(2)}`)
      .join(" ");
    console.log(`final ${result.utteranceIndex}: ${result.alternatives[0].transcript}`);
    console.log(`words ${words}`);
  }
  if (response.endOfStream) {
    console.log(`end of stream after ${response.processedSamples} samples`);
  }
});
call.on("error", (error) => {
  console.error(`${grpc.status[error.code]}: ${error.details}`);
  process.exit(1);
});

// Config first: the WAV header travels with the first audio message.
call.write({
  config: {
    format: { encoding: "AUDIO_ENCODING_WAV" },
    interimResults: true,
    options: { wordTimestamps: true },
  },
});
let offset = 0;
const timer = setInterval(
  () => {
    if (offset >= wav.length) {
      clearInterval(timer);
      call.end(); // half-close: trailing speech gets its final
      return;
    }
    call.write({ audio: { data: wav.subarray(offset, offset + chunkBytes) } });
    offset += chunkBytes;
  },
  fast ? 0 : 100,
);
