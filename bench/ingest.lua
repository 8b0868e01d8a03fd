-- wrk script: POST pre-signed referral events, each wrk thread taking every Nth line.
local tid_counter = 0
function setup(thread)
  thread:set("tid", tid_counter)
  tid_counter = tid_counter + 1
end

function init(args)
  bodies, sigs = {}, {}
  for line in io.lines(args[1]) do
    local sig, body = line:match("^(%S+) (.*)$")
    sigs[#sigs + 1] = sig
    bodies[#bodies + 1] = body
  end
  step = tonumber(args[2])
  counter = tid
  errors = 0
end

function request()
  local i = (counter % #bodies) + 1
  counter = counter + step
  return wrk.format("POST", nil, {["Content-Type"] = "application/json",
                                  ["X-Extole-Signature"] = sigs[i]}, bodies[i])
end

function response(status, headers, body)
  if status ~= 202 then errors = errors + 1 end
end

function done(summary, latency, requests)
  io.write(string.format("non202=%d\n", summary.errors.status))
end
