package session

import (
	"encoding/hex"
	"strconv"

	"github.com/pqrelay/pqrelay/session/replay"
	"github.com/redis/rueidis"
)

// The replay window shared by all replicas (docs/REDIS.md §6.2): the RFC 6479
// window of package replay, kept in one Redis string per session and updated
// by one Lua script, so that a request costs one EVALSHA, auto-pipelined by
// rueidis with every other replica's and request's commands.
//
//	key:   pqrelay:r:<hex id>:<created, Unix ms>   (a replaced session gets a new window)
//	value: last u32 | ring [256] u64               2,052 bytes, PEXPIREAT the session's expiry + MaxClockSkew
//
// The script is the same algorithm as replay.Window.Accept, and the tests
// run both over the same counter sequences.
const (
	windowKeyPrefix = redisKeyPrefix + "r:"
	windowBlocks    = 256
	windowBits      = windowBlocks * 64
	// windowScript returns 1 for a counter seen before or too old, else 0
	// after recording it. Counters are below 2^32, exact in Lua numbers.
	windowScript = `
local k = KEYS[1]
local c = tonumber(ARGV[1])
local last = redis.call('BITFIELD', k, 'GET', 'u32', 0)[1]
local block = math.floor(c / 64)
local bit = 32 + (block % 256) * 64 + c % 64
if c > last then
  local cur = math.floor(last / 64)
  local n = math.min(block - cur, 256)
  if n > 0 then
    local first = (cur + 1) % 256
    local n1 = math.min(n, 256 - first)
    redis.call('SETRANGE', k, 4 + first * 8, string.rep('\0', n1 * 8))
    if n > n1 then
      redis.call('SETRANGE', k, 4, string.rep('\0', (n - n1) * 8))
    end
  end
  local r = redis.call('BITFIELD', k, 'SET', 'u32', 0, c, 'SET', 'u1', bit, 1)
  if last == 0 then
    redis.call('PEXPIREAT', k, ARGV[2])
  end
  return r[2]
end
if last - c > ` + windowSizeText + ` then
  return 1
end
return redis.call('SETBIT', k, bit, 1)
`
	windowSizeText = "16320"
)

// The script hard-codes the window geometry; a change to package replay
// must change it too. These fail to compile when they drift apart.
var (
	_ [replay.WindowSize - 16320]struct{}
	_ [16320 - replay.WindowSize]struct{}
	_ [windowBits - (replay.WindowSize + 64)]struct{}
)

// The SHA-1 of the script is loaded from Redis (SCRIPT LOAD) rather than
// computed here, so that the relay never calls crypto/sha1 (FIPS mode).
var windowLua = rueidis.NewLuaScript(windowScript, rueidis.WithLoadSHA1(true))

func windowKey(s *Session) string {
	id := s.ClientID.ID()
	var b [len(windowKeyPrefix) + 2*IDLen + 1 + 20]byte
	k := append(b[:0], windowKeyPrefix...)
	k = hex.AppendEncode(k, id[:])
	k = append(k, ':')
	k = strconv.AppendInt(k, s.Created.UnixMilli(), 10)
	return string(k)
}
