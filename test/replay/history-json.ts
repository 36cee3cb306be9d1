/**
 * History ⇄ JSON in the format of other Temporal tools (`temporal workflow show --output json`),
 * what @temporalio/common's historyToJSON / historyFromJSON do — but with the protobufjs copy that
 * @temporalio/proto's types were built with.
 *
 * Why not those two: package-lock.json installs protobufjs 8 three times (nested under
 * @temporalio/common, /proto and /worker, as protobufjs 7 sits at the top for @grpc/proto-loader),
 * and protobufjs's toJson/fromJson check `type instanceof Type` against their own copy, so
 * common's functions throw "type must be a Type" on proto's types. For the same reason a history
 * is handed to Worker.runReplayHistories as a History object, never as JSON (the worker would
 * convert it with common's historyFromJSON).
 */
import { createRequire } from 'node:module';
import * as proto from '@temporalio/proto';
import { patchProtobufRoot } from '@temporalio/proto/lib/patch-protobuf-root';

export type History = proto.temporal.api.history.v1.IHistory;

interface ProtoJson {
  toJson(type: unknown, message: unknown): unknown;
  fromJson(type: unknown, json: unknown, options?: { ignoreUnknownFields?: boolean }): unknown;
}

const protojson = createRequire(require.resolve('@temporalio/proto'))('protobufjs/ext/protojson') as ProtoJson;
const historyType = (patchProtobufRoot(proto) as unknown as { lookupType(name: string): { fromObject(o: unknown): unknown } }).lookupType(
  'temporal.api.history.v1.History',
);

/** Pretty-printed, as `temporal workflow show --output json` writes it. */
export function historyToJSON(history: History): string {
  return JSON.stringify(protojson.toJson(historyType, historyType.fromObject(history)), null, 2);
}

/** Unknown fields (from a newer server) are ignored, as the SDK's own historyFromJSON does. */
export function historyFromJSON(json: unknown): History {
  if (typeof json !== 'object' || json === null || !Array.isArray((json as { events?: unknown }).events)) {
    throw new TypeError('not a history: expected an object with an array of events');
  }
  return protojson.fromJson(historyType, json, { ignoreUnknownFields: true }) as History;
}
