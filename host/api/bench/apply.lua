-- wrk script: business license applications spread over many applicants
-- (one token per line in $TOKENS_FILE), each with its own application id,
-- so that each is charged and licensed rather than replayed.
local tokens = {}
for line in io.lines(os.getenv("TOKENS_FILE")) do
  tokens[#tokens + 1] = line
end
local counter = 0
-- Each wrk thread has its own Lua state, seeded alike: a run-wide random
-- part and the thread's number (set by setup) keep the ids of the threads
-- apart, so that no application is a replay of another thread's.
local threads = 0
local run = tostring(os.time()) .. "-" .. tostring(math.random(1, 1000000000))
setup = function(thread)
  threads = threads + 1
  thread:set("prefix", run .. "-" .. threads)
end

request = function()
  counter = counter + 1
  local token = tokens[(counter % #tokens) + 1]
  local body = string.format(
    '{"application-id":"LOAD-%s-%d","business-scope":"wholesale of tea"}',
    prefix, counter)
  return wrk.format("POST", "/market-regulation/business-license-applications",
    { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }, body)
end

-- Says what a refused application was refused for (the first few).
local refused = 0
response = function(status, headers, body)
  if status >= 300 and refused < 5 then
    refused = refused + 1
    io.stderr:write(string.format("business license answered %d: %s\n", status, body))
  end
end
