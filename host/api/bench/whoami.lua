-- wrk script: GET /public-security/whoami with the token in $TOKEN.
request = function()
  return wrk.format("GET", "/public-security/whoami",
    { ["Authorization"] = "Bearer " .. os.getenv("TOKEN") })
end
