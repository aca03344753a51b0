// A local Firestore for development, tests and the demo:
//   node start.mjs [PORT] [--host=ADDRESS] [--exit-with-stdin]
// PORT 0 or none: the OS picks a free one. Prints one line once the gRPC port accepts connections:
//   firestore emulator listening on 127.0.0.1:PORT
// --exit-with-stdin: stop when stdin closes, so the emulator dies with the process that started it
// (the Python launcher) even when that one is killed without a chance to clean up.
import { ServerCredentials } from "@grpc/grpc-js";
import {
  FirestoreServer,
  FirestoreStateCollection,
  FirestoreStateDocument,
} from "@firestore-emulator/server";

// @firestore-emulator/server 0.3.15 applies every write as a merge of the fields it carries: its
// updateFields() walks only those fields. Real Firestore differs in two ways the worker relies on:
// - a write with an update mask (`set(..., merge=True)`, `update()`) removes every mask path the
//   write does not carry: that is how DELETE_FIELD travels, and how the worker drops
//   `pointsFromAlpine` and `loyaltyDiscrepancy` once a customer has no Alpine account;
// - a write without a mask (a plain `set()`) replaces the whole document, so re-seeding leaves no
//   stale field behind.
// Both are restored here by wrapping the state methods, after the original call, so node_modules
// stays as npm installed it. Mask paths are handled at the top level only: the worker never
// deletes nested fields.
function unquoteTopLevelPath(path) {
  if (/^[A-Za-z_][A-Za-z_0-9]*$/.test(path)) return path;
  const quoted = /^`((?:[^`\\]|\\.)*)`$/.exec(path);
  return quoted ? quoted[1].replace(/\\(.)/g, "$1") : null;
}

function keepOnly(document, shouldKeep) {
  const doomed = Object.keys(document.fields).filter((name) => !shouldKeep(name));
  if (doomed.length === 0) return;
  // `document.fields` is frozen by immer: replace the object instead of deleting from it.
  const kept = { ...document.fields };
  for (const name of doomed) delete kept[name];
  document.fields = kept;
}

function applyMaskDeletes(document, fields, updateMask) {
  const masked = new Set((updateMask ?? []).map(unquoteTopLevelPath));
  keepOnly(document, (name) => Object.hasOwn(fields, name) || !masked.has(name));
}

const { set: originalSet, update: originalUpdate } = FirestoreStateDocument.prototype;

FirestoreStateDocument.prototype.update = function (date, fields, updateMask) {
  const result = originalUpdate.call(this, date, fields, updateMask);
  applyMaskDeletes(this, fields, updateMask);
  return result;
};

// The commit handler passes the write's mask as a third argument, `undefined` when it has none;
// the emulator's own field transforms (SERVER_TIMESTAMP, Increment, ...) call set() with two
// arguments and must keep merging into the document.
FirestoreStateDocument.prototype.set = function (date, fields, updateMask) {
  const result = originalSet.call(this, date, fields, updateMask);
  if (arguments.length >= 3 && updateMask == null) {
    keepOnly(this, (name) => Object.hasOwn(fields, name));
  } else {
    applyMaskDeletes(this, fields, updateMask);
  }
  return result;
};

// The package adds a document to a collection through immer, which copies the collection's whole
// index for every new document (and for every read of a missing one): seeding n profiles costs
// O(n²), about 10 s for 3,000 profiles. Nothing else reads that index through immer, so a new
// document is added in place instead (after one copy, since immer froze the object it returned).
FirestoreStateCollection.prototype.getDocument = function (documentName) {
  if (!Object.hasOwn(this.documents, documentName)) {
    if (Object.isFrozen(this.documents)) this.documents = { ...this.documents };
    this.documents[documentName] = new FirestoreStateDocument(
      this.emitter,
      this.database,
      this,
      documentName,
      {},
      {},
    );
  }
  return this.documents[documentName];
};

const args = process.argv.slice(2);
const exitWithStdin = args.includes("--exit-with-stdin");
const portArg = args.find((arg) => !arg.startsWith("--")) ?? "0";
// Loopback unless told otherwise (a container must listen on its network interface).
const host = (args.find((arg) => arg.startsWith("--host=")) ?? "--host=127.0.0.1").slice(7);
const requested = /^\d+$/.test(portArg) ? Number(portArg) : Number.NaN;
if (!(requested >= 0 && requested <= 65535)) {
  console.error(`usage: node start.mjs [PORT] [--host=ADDRESS] [--exit-with-stdin]; bad port ${portArg}`);
  process.exit(2);
}

// FirestoreServer.start() binds every interface; this unauthenticated database stays on loopback
// unless --host says otherwise.
const emulator = new FirestoreServer();
emulator.server.bindAsync(
  `${host}:${requested}`,
  ServerCredentials.createInsecure(),
  (error, port) => {
    if (error) {
      console.error(`firestore emulator could not bind ${host}:${requested}: ${error.message}`);
      process.exit(1);
    }
    console.log(`firestore emulator listening on ${host}:${port}`);
  },
);

function shutdown() {
  emulator.stop();
  process.exit(0);
}
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);
if (exitWithStdin) {
  process.stdin.on("end", shutdown);
  process.stdin.resume();
}
