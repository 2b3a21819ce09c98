// Finds the speech in a 16-bit PCM WAV file with speechmesh's VoiceActivity service.
// Usage: node detect.js FILE.wav [HOST:PORT]   (npm install @grpc/grpc-js @grpc/proto-loader)
const fs = require("fs");
const path = require("path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const PROTOS = path.resolve(__dirname, "../../../protos");
const definition = protoLoader.loadSync(path.join(PROTOS, "speechmesh/vad/v1/vad.proto"), {
  includeDirs: [PROTOS],
  longs: Number,
  enums: String,
  defaults: true,
});
const vad = grpc.loadPackageDefinition(definition).speechmesh.vad.v1;

const [file, address = "127.0.0.1:50051"] = process.argv.slice(2);
const client = new vad.VoiceActivity(address, grpc.credentials.createInsecure());
const metadata = new grpc.Metadata();
if (process.env.SPEECHMESH_API_KEY) {
  metadata.set("authorization", `Bearer ${process.env.SPEECHMESH_API_KEY}`);
}

const request = {
  audio: { format: { encoding: "AUDIO_ENCODING_WAV" }, data: fs.readFileSync(file) },
  options: { threshold: 0.5, minSilenceDurationMs: 300 },
};
client.Detect(request, metadata, (error, response) => {
  if (error) {
    console.error(`${grpc.status[error.code]}: ${error.details}`);
    process.exit(1);
  }
  for (const s of response.segments) {
    console.log(`speech ${(s.startMs / 1000).toFixed(2)} s – ${(s.endMs / 1000).toFixed(2)} s`);
  }
  console.log(`${response.segments.length} segment(s), request ${response.requestId}`);
});
