-- wrk script: business license applications spread over many applicants
-- (one token per line in $TOKENS_FILE), each with its own application id,
-- so that each is charged and licensed rather than replayed.
local tokens = {}
for line in io.lines(os.getenv("TOKENS_FILE")) do
  tokens[#tokens + 1] = line
end
local counter = 0
local prefix = tostring(math.random(1, 1000000000))

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
