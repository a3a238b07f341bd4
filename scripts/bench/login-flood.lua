-- wrk script: wrong passwords for unknown accounts from many (declared) addresses, so
-- neither the per-account lockout nor the per-address limiter short-circuits the hash.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Sec-Fetch-Site"] = "same-origin"
request = function()
  local n = math.random(1, 1000000000)
  wrk.headers["X-Forwarded-For"] = string.format("10.%d.%d.%d",
    n % 256, math.floor(n / 256) % 256, math.floor(n / 65536) % 256)
  return wrk.format(nil, nil, nil,
    string.format('{"login":"nobody%d@example.fr","password":"Wrong-Password-123!"}', n))
end
