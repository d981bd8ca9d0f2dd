// A REST path may have to answer another HTTP status than its gRPC code maps to, because
// the clients of that path were written against it: seed 002's duplicate email on
// POST /users/ is 400, while CreateUser fails with ALREADY_EXISTS (409 through the
// transcoder). The service says so in the `x-gate-http-status` response header, which the
// in-process REST gateway also reads. At the edge a Lua filter does the same on REST routes
// only. local_reply_config cannot: its mappers rewrite Envoy's own replies, and the
// transcoder's answer to a gRPC error is the upstream response, not a local reply.
//
// The Lua filter stands before the transcoder in the filter list, so on the way back it sees
// the response the transcoder made (:status 409, JSON body); it is disabled by default and
// enabled on the REST routes, so gRPC, gRPC-Web and Connect responses are never touched.

export const restStatusHeader = "x-gate-http-status";

/** The script: moves a 4xx from x-gate-http-status into :status, and drops the header. */
export const restStatusScript = `-- Gate: a REST answer's status as the service asked for it (${restStatusHeader}).
function envoy_on_response(response_handle)
  local headers = response_handle:headers()
  local wanted = headers:get("${restStatusHeader}")
  if wanted == nil then
    return
  end
  headers:remove("${restStatusHeader}")
  if string.match(wanted, "^4%d%d$") then
    headers:replace(":status", wanted)
  end
end
`;
