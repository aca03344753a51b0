// A local Firestore for development, tests and the demo:
//   node start.mjs [PORT] [--host=ADDRESS] [--exit-with-stdin]
// PORT 0 or none: the OS picks a free one. Prints one line once the gRPC port accepts connections:
//   firestore emulator listening on 127.0.0.1:PORT
// --exit-with-stdin: stop when stdin closes, so the emulator dies with the process that started it
// (the Python launcher) even when that one is killed without a chance to clean up.
import { ServerCredentials } from "@grpc/grpc-js";
import {
  FirestoreServer,
  FirestoreState,
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

// Each collection's documents as an array, and for each field queried by equality its documents
// by value, built when a query first needs them and dropped at the collection's next write (the
// package itself reads every document of the collection for every query: about half a second a
// query over 100,000 profiles). Real Firestore serves these queries from its indexes.
const INDEXES = new WeakMap();

function forgetIndex(collection) {
  if (collection) INDEXES.delete(collection);
}

function indexOf(collection) {
  let index = INDEXES.get(collection);
  if (!index) {
    index = { documents: collection.getAllDocuments(), byField: new Map() };
    INDEXES.set(collection, index);
  }
  return index;
}

function documentsWhere(collection, path, valueKey) {
  const index = indexOf(collection);
  let byValue = index.byField.get(path);
  if (!byValue) {
    byValue = new Map();
    for (const document of index.documents) {
      const field = document.metadata.hasExist ? document.getField(path) : undefined;
      if (!field) continue;
      const key = keyOfField(field);
      if (!SCALAR_RANKS.has(key[0])) continue;
      const name = `${key[0]}:${key[1]}`;
      const bucket = byValue.get(name);
      if (bucket) bucket.push(document);
      else byValue.set(name, [document]);
    }
    index.byField.set(path, byValue);
  }
  return byValue.get(valueKey) ?? [];
}

FirestoreStateDocument.prototype.update = function (date, fields, updateMask) {
  const result = originalUpdate.call(this, date, fields, updateMask);
  applyMaskDeletes(this, fields, updateMask);
  forgetIndex(this.parent);
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
  forgetIndex(this.parent);
  return result;
};

for (const name of ["create", "delete"]) {
  const original = FirestoreStateDocument.prototype[name];
  FirestoreStateDocument.prototype[name] = function (...args) {
    const result = original.apply(this, args);
    forgetIndex(this.parent);
    return result;
  };
}

// The package adds a document to a collection through immer, which copies the collection's whole
// index for every new document (and for every read of a missing one): seeding n profiles costs
// O(n²), about 10 s for 3,000 profiles. Nothing else reads that index through immer, so a new
// document is added in place instead (after one copy, since immer froze the object it returned).
FirestoreStateCollection.prototype.getDocument = function (documentName) {
  if (!Object.hasOwn(this.documents, documentName)) {
    if (Object.isFrozen(this.documents)) this.documents = { ...this.documents };
    forgetIndex(this);
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

// A document as the API answers it, built straight from the stored fields (the package builds a
// protobuf Document, then converts each of its values back: about a millisecond a profile);
// ``only``: the top-level fields a query's projection (select) names.
function plainDocument(document, only) {
  const stamp = (date) => ({
    seconds: Math.floor(date.getTime() / 1e3),
    nanos: date.getMilliseconds() * 1e6,
  });
  const fields = {};
  for (const name of only ?? Object.keys(document.fields)) {
    const field = document.fields[name];
    if (field) fields[name] = field.toV1ValueObject();
  }
  return {
    create_time: stamp(document.metadata.createdAt),
    fields,
    name: document.getPath(),
    update_time: stamp(document.metadata.updatedAt),
  };
}

// The top-level fields the BatchGetDocuments call being answered asks for (its read mask); null:
// every field. The package ignores read masks; real Firestore sends only the masked fields.
let readMask = null;

const { toV1DocumentObject: originalDocumentObject } = FirestoreStateDocument.prototype;
FirestoreStateDocument.prototype.toV1DocumentObject = function () {
  return this.metadata.hasExist ? plainDocument(this, readMask) : originalDocumentObject.call(this);
};

// The package answers BatchGetDocuments synchronously, one toV1DocumentObject() per document, so
// the call's mask is set around it. A mask naming a nested field is not applied (whole documents
// are sent, as before): the worker masks top-level fields only.
function honourReadMasks(server) {
  const handler = server.handlers.get("/google.firestore.v1.Firestore/BatchGetDocuments");
  const answer = handler.func;
  handler.func = (call) => {
    const names = (call.request?.mask?.field_paths ?? []).map(unquoteTopLevelPath);
    readMask = names.length > 0 && !names.includes(null) ? names : null;
    try {
      return answer(call);
    } finally {
      readMask = null;
    }
  };
}

// Queries. The package sorts the whole collection before it filters, keeps documents that lack
// an order_by field, and ignores cursors (start_at/end_at), offset and select. Real Firestore
// filters through its indexes, leaves out a document without an order_by field, and pages by
// cursor; the dashboard pages by cursor (keyset pagination). So queries are answered here: the
// filter compiled once, candidates from the equality index, the matches ordered (and kept per
// query shape until the next write), then cursors, offset, limit and projection. Values compare
// as Firestore orders them: by type (null, booleans, numbers, timestamps, strings, bytes,
// references, ...), integers and doubles as numbers.
const TYPE_RANK = {
  null_value: 0,
  boolean_value: 1,
  integer_value: 2,
  double_value: 2,
  timestamp_value: 3,
  string_value: 4,
  bytes_value: 5,
  reference_value: 6,
  geo_point_value: 7,
  array_value: 8,
  map_value: 9,
};

function comparableOf(type, value) {
  switch (type) {
    case "null_value":
      return 0;
    case "boolean_value":
      return value ? 1 : 0;
    case "integer_value":
    case "double_value":
      return Number(value);
    case "timestamp_value":
      return Number(value?.seconds ?? 0) * 1e9 + Number(value?.nanos ?? 0);
    case "string_value":
    case "reference_value":
      return String(value);
    default:
      return 0; // bytes, geo points, arrays and maps: ordered by type only
  }
}

// [rank, value] of a stored field (FirestoreStateDocument*Field).
function keyOfField(field) {
  return [TYPE_RANK[field.type] ?? 10, comparableOf(field.type, field.value)];
}

// [rank, value] of a protobuf Value (a cursor's).
function keyOfValue(value) {
  for (const type of Object.keys(TYPE_RANK)) {
    if (value[`has_${type}`]) return [TYPE_RANK[type], comparableOf(type, value[type])];
  }
  return [10, 0];
}

function compareKeys(a, b) {
  if (a[0] !== b[0]) return a[0] < b[0] ? -1 : 1;
  if (a[1] === b[1]) return 0;
  return a[1] < b[1] ? -1 : 1;
}

const NAME = "__name__";
const { v1Query: originalQuery } = FirestoreState.prototype;

// A query's filter compiled once into a plain function: the package's own filter converts the
// filter's value and reads the protobuf message again for every document, which costs about 5 µs
// a document (half a second a query over 100,000 profiles). Scalar comparisons, IN and NOT_IN of
// scalars, AND and OR are compiled; any other filter (arrays, maps, unary filters) goes to the
// package's filter.
const FIELD_OPS = {
  1: (order) => order < 0, // LESS_THAN
  2: (order) => order <= 0, // LESS_THAN_OR_EQUAL
  3: (order) => order > 0, // GREATER_THAN
  4: (order) => order >= 0, // GREATER_THAN_OR_EQUAL
};
const SCALAR_RANKS = new Set([0, 1, 2, 3, 4, 6]);

function scalarKey(value) {
  const key = keyOfValue(value);
  return SCALAR_RANKS.has(key[0]) ? key : null;
}

// The equality conditions of a filter that every match meets ([path, value key]): the top
// level's, or those of its AND.
function equalitiesOf(filter) {
  const parts = filter.has_composite_filter
    ? filter.composite_filter.op === 1
      ? filter.composite_filter.filters
      : []
    : [filter];
  const found = [];
  for (const part of parts) {
    if (!part.has_field_filter || part.field_filter.op !== 5) continue;
    const path = part.field_filter.field.field_path;
    const at = scalarKey(part.field_filter.value);
    if (path && !path.includes(".") && path !== NAME && at !== null) {
      found.push([path, `${at[0]}:${at[1]}`]);
    }
  }
  return found;
}

function compileFilter(filter) {
  if (filter.has_composite_filter) {
    const { op, filters } = filter.composite_filter;
    const parts = filters.map(compileFilter);
    if (parts.some((part) => part === null)) return null;
    if (op === 1) return (document) => parts.every((part) => part(document));
    if (op === 2) return (document) => parts.some((part) => part(document));
    return null;
  }
  if (!filter.has_field_filter) return null;
  const { field, op, value } = filter.field_filter;
  const path = field.field_path;
  if (!path || path.includes(".") || path === NAME) return null;
  const read = (document) => {
    const stored = document.getField(path);
    return stored ? keyOfField(stored) : null;
  };
  if (op === 5 || op === 6 || op in FIELD_OPS) {
    const at = scalarKey(value);
    if (at === null) return null;
    if (op === 5) return (document) => {
      const key = read(document);
      return key !== null && compareKeys(key, at) === 0;
    };
    if (op === 6) return (document) => {
      const key = read(document);
      return key !== null && key[0] !== 0 && compareKeys(key, at) !== 0;
    };
    const test = FIELD_OPS[op];
    return (document) => {
      const key = read(document);
      return key !== null && key[0] === at[0] && test(compareKeys(key, at));
    };
  }
  if ((op === 8 || op === 10) && value.has_array_value) {
    const keys = value.array_value.values.map(scalarKey);
    if (keys.some((key) => key === null)) return null;
    const within = (key) => keys.some((at) => compareKeys(key, at) === 0);
    if (op === 8) return (document) => {
      const key = read(document);
      return key !== null && within(key);
    };
    return (document) => {
      const key = read(document);
      return key !== null && key[0] !== 0 && !within(key);
    };
  }
  return null;
}

// A query's matching documents in its order, with their order keys: [{ document, keys }].
function orderedRows(documents, orders) {
  const rows = [];
  for (const document of documents) {
    const keys = [];
    for (const { path } of orders) {
      if (path === NAME) {
        keys.push([6, document.getPath()]);
        continue;
      }
      const field = document.getField(path);
      if (!field) break; // Firestore leaves out a document without an order_by field
      keys.push(keyOfField(field));
    }
    if (keys.length === orders.length) rows.push({ document, keys });
  }
  if (orders.length > 0) rows.sort((a, b) => compareRow(orders, a.keys, b.keys));
  return rows;
}

function compareRow(orders, keys, other) {
  for (let i = 0; i < other.length; i += 1) {
    const order = compareKeys(keys[i], other[i]);
    if (order !== 0) return order * orders[i].sign;
  }
  return 0;
}

// The first row that ``keep`` accepts, ``keep`` being false then true along the rows.
function firstKept(rows, keep) {
  let low = 0;
  let high = rows.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (keep(rows[middle])) high = middle;
    else low = middle + 1;
  }
  return low;
}

// Ordered results kept per query shape (its filter and order) beside the collection's index,
// so that the pages of one list, and its count, do not filter and sort again: dropped with the
// index at the collection's next write, as an index of Firestore's would follow the write.
const MAX_SHAPES = 64;

function shapedRows(collection, query, test, orders) {
  const index = indexOf(collection);
  const shape = JSON.stringify([query.has_where ? query.where.toObject() : null, orders]);
  index.shapes ??= new Map();
  let rows = index.shapes.get(shape);
  if (!rows) {
    // Candidates: the documents of the filter's most selective equality, else all of them.
    let candidates = null;
    for (const [path, valueKey] of query.has_where ? equalitiesOf(query.where) : []) {
      const matching = documentsWhere(collection, path, valueKey);
      if (candidates === null || matching.length < candidates.length) candidates = matching;
    }
    const filtered = (candidates ?? index.documents).filter(
      (document) => document.metadata.hasExist && test(document),
    );
    rows = orderedRows(filtered, orders);
    if (index.shapes.size >= MAX_SHAPES) index.shapes.clear();
    index.shapes.set(shape, rows);
  }
  return rows;
}

// A collection-group query (``collection_group("audit")``: ``all_descendants``), which the package
// does not serve: every collection of that id at any depth under ``parent`` (the database's
// documents, or a document), filtered and ordered as one. Its rows are not kept between queries.
function groupRows(state, parent, collectionId, test, orders) {
  if (!collectionId) throw new Error("a collection-group query names its collection id");
  const [, project, , database, , ...rest] = parent.split("/");
  let top = state.getProject(project).getDatabase(database);
  if (rest.length > 0) top = state.getDocument(parent);
  const matching = [];
  const visit = (collections) => {
    for (const collection of Object.values(collections)) {
      for (const document of collection.getAllDocuments()) {
        if (collection.name === collectionId && document.metadata.hasExist && test(document)) {
          matching.push(document);
        }
        visit(document.collections);
      }
    }
  };
  visit(top.collections);
  return orderedRows(matching, orders);
}

FirestoreState.prototype.v1Query = function (parent, query) {
  const orders = (query.order_by ?? []).map(({ field, direction }) => ({
    path: field.field_path,
    sign: direction === 2 ? -1 : 1, // Direction.DESCENDING is 2
  }));
  const test = query.has_where ? compileFilter(query.where) : () => true;
  let rows;
  if (query.from[0]?.all_descendants) {
    if (test === null) throw new Error("a collection-group query's filter is not served here");
    rows = groupRows(this, parent, query.from[0].collection_id, test, orders);
  } else if (test === null) {
    const filtered = originalQuery.call(this, parent, {
      from: query.from,
      has_where: query.has_where,
      where: query.where,
      order_by: [],
      has_limit: false,
    });
    rows = orderedRows(filtered, orders);
  } else {
    // The same checks as the package's own query: one collection, named.
    if (query.from.length !== 1) throw new Error("query.from.length must be 1");
    const { collection_id } = query.from[0] ?? {};
    if (!collection_id) throw new Error("collection_id is not supported");
    rows = shapedRows(this.getCollection(`${parent}/${collection_id}`), query, test, orders);
  }
  let start = 0;
  let end = rows.length;
  if (query.has_start_at) {
    const at = query.start_at.values.map(keyOfValue);
    const before = query.start_at.before;
    start = firstKept(rows, (row) => {
      const order = compareRow(orders, row.keys, at);
      return before ? order >= 0 : order > 0;
    });
  }
  if (query.has_end_at) {
    const at = query.end_at.values.map(keyOfValue);
    const before = query.end_at.before;
    end = firstKept(rows, (row) => {
      const order = compareRow(orders, row.keys, at);
      return before ? order >= 0 : order > 0;
    });
  }
  start += Math.max(query.offset ?? 0, 0);
  if (query.has_limit) end = Math.min(end, start + query.limit.value);
  let docs = start < end ? rows.slice(start, end).map((row) => row.document) : [];
  if (query.has_select) {
    // A projection: the answer carries the named fields only (nested paths by their top level).
    const only = [...new Set(query.select.fields.map((ref) => ref.field_path.split(".")[0]))];
    docs = docs.map((document) =>
      Object.create(document, {
        toV1DocumentObject: { value: () => plainDocument(document, only) },
      }),
    );
  }
  return docs;
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
honourReadMasks(emulator.server);
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
