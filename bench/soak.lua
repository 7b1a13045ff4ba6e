-- The soak mix, driven by bench/soak.py: as Bob, over 500 keys of his chosen uniformly,
-- 70% GET property, 15% PUT (create or update), 5% DELETE, 10% list keys.
-- Every response is classed; done() prints one line starting "SOAK " for soak.py to parse.
dofile("bench/auth.lua")

local KEYS = 500
local base = "/rest/api/3/user/properties/"
local list = "/rest/api/3/user/properties?accountId=" .. account

-- Values of several sizes, built once: building a body per request would cost wrk CPU the
-- server then does not get.
local bodies = {}
for i, size in ipairs({16, 64, 256, 1024, 4096}) do
  bodies[i] = string.format('{"theme":"dark","size":%d,"pad":"%s"}', size, string.rep("x", size))
end

local threads = {}
local next_id = 1

function setup(thread)
  thread:set("id", next_id)
  table.insert(threads, thread)
  next_id = next_id + 1
end

function init(args)
  -- Each thread its own sequence, else both threads would issue the same requests.
  math.randomseed(os.time() * 100 + id)
  counts = {}
end

local function property(key)
  return base .. string.format("soak.%03d", key) .. "?accountId=" .. account
end

function request()
  local r = math.random()
  local path = property(math.random(0, KEYS - 1))
  if r < 0.70 then
    return wrk.format("GET", path)
  elseif r < 0.85 then
    return wrk.format("PUT", path, nil, bodies[math.random(#bodies)])
  elseif r < 0.90 then
    return wrk.format("DELETE", path)
  end
  return wrk.format("GET", list)
end

-- A thread's responses do not say which request they answer, so a 404 is judged by its body:
-- only Jira's "The property K does not exist." (a GET or DELETE of an absent key) is expected.
function response(status, headers, body)
  local class = tostring(status)
  if status == 404 and body and body:find('"The property ', 1, true) and body:find(" does not exist.", 1, true) then
    class = "404-absent"
  end
  counts[class] = (counts[class] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for class, n in pairs(thread:get("counts")) do
      total[class] = (total[class] or 0) + n
    end
  end
  local classes = {}
  for class, n in pairs(total) do
    table.insert(classes, class .. ":" .. n)
  end
  table.sort(classes)
  local e = summary.errors
  io.write(string.format(
    "SOAK requests=%d duration_us=%d p99_us=%d connect=%d read=%d write=%d timeout=%d status=%s\n",
    summary.requests, summary.duration, latency:percentile(99), e.connect, e.read, e.write, e.timeout,
    table.concat(classes, ",")))
end
