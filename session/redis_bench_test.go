package session

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pqrelay/pqrelay/internal/redistest"
	"github.com/redis/rueidis"
)

// The designs docs/REDIS.md §6.2 weighs for the cross-replica replay check,
// each as the one command a request costs, measured on the Redis side: CPU
// per request (INFO's used_cpu_user + used_cpu_sys) and memory. Requests run
// from 150 goroutines over 64 sessions with increasing counters, as the
// inbound relay at 300 connections would issue them.
//
//	go test -run '^$' -bench ReplayDesign -benchtime 400000x ./session/
func BenchmarkReplayDesign(b *testing.B) {
	srv := redistest.Start(b)
	sec := testSecrets(b)
	r := openTestRedis(b, srv, sec)
	waitHealthy(b, r)
	c := r.client.Load()
	ctx := context.Background()
	expires := strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)
	sessions := make([]*Session, 64)
	for i := range sessions {
		sessions[i] = newTestSession(b, sec, time.Hour)
	}
	luaWindow := rueidis.NewLuaScript(benchLuaWindow)

	designs := []struct {
		name   string
		accept func(session int, counter uint64) (bool, error)
	}{
		{"BitfieldChunks", func(session int, counter uint64) (bool, error) {
			// As shipped: redis_replay.go.
			seen, err := r.acceptShared(ctx, c, sessions[session], counter)
			return !seen, err
		}},
		{"LuaWindow", func(session int, counter uint64) (bool, error) {
			// RFC 6479 window per session, updated by a script.
			seen, err := luaWindow.Exec(ctx, c, []string{"bench:w:" + strconv.Itoa(session)},
				[]string{strconv.FormatUint(counter, 10), expires}).AsInt64()
			return seen == 0, err
		}},
		{"SetNXPerMessage", func(session int, counter uint64) (bool, error) {
			// One key per message, living 2×MaxClockSkew + 10 s.
			key := "bench:m:" + strconv.Itoa(session) + ":" + strconv.FormatUint(counter, 10)
			err := c.Do(ctx, c.B().Set().Key(key).Value("1").Nx().PxMilliseconds(130_000).Build()).Error()
			if rueidis.IsRedisNil(err) {
				return false, nil
			}
			return err == nil, err
		}},
	}
	for _, d := range designs {
		b.Run(d.name, func(b *testing.B) {
			if _, err := srv.Do("FLUSHALL"); err != nil {
				b.Fatal(err)
			}
			cpu0, mem0 := redisCPU(b, srv), redisMemory(b, srv)
			var next atomic.Uint64
			b.SetParallelism(150) // requests in flight, as at 300 connections
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n := next.Add(1)
					if ok, err := d.accept(int(n%64), n/64+1); err != nil || !ok {
						b.Errorf("accept: %v %v", ok, err)
						return
					}
				}
			})
			b.StopTimer()
			ops := float64(b.N)
			b.ReportMetric((redisCPU(b, srv)-cpu0)/ops*1e6, "redis-µs/op")
			b.ReportMetric(float64(redisMemory(b, srv)-mem0)/ops, "redis-B/op")
		})
	}
}

// benchLuaWindow is the alternative not shipped: replay.Window's RFC 6479
// ring (256 blocks of 64 bits after a u32 "last") in one Redis string per
// session, 2,052 bytes. Exact, but three times the Redis CPU of BITFIELD.
const benchLuaWindow = `
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
if last - c > 16320 then
  return 1
end
return redis.call('SETBIT', k, bit, 1)
`

func redisCPU(b *testing.B, srv *redistest.Server) float64 {
	info, err := srv.Do("INFO", "cpu")
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for _, line := range strings.Split(info, "\r\n") {
		for _, f := range []string{"used_cpu_sys:", "used_cpu_user:"} {
			if v, ok := strings.CutPrefix(line, f); ok {
				x, _ := strconv.ParseFloat(v, 64)
				total += x
			}
		}
	}
	return total
}

func redisMemory(b *testing.B, srv *redistest.Server) int64 {
	info, err := srv.Do("INFO", "memory")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// BenchmarkRedisStoreAccept is the whole per-request check through the store
// (the local window, then the shared record) from 150 goroutines, with and
// without rueidis's flush delay. client-µs/op is this process's CPU time
// (getrusage) per request, redis-µs/op the server's.
func BenchmarkRedisStoreAccept(b *testing.B) {
	for _, delay := range []time.Duration{-1, 20 * time.Microsecond, 50 * time.Microsecond, 100 * time.Microsecond} {
		b.Run("flushDelay="+max(delay, 0).String(), func(b *testing.B) {
			srv := redistest.Start(b)
			sec := testSecrets(b)
			cfg := testRedisConfig(b, srv.URL())
			cfg.maxFlushDelay = delay
			r := openTestRedisConfig(b, cfg, sec, nil)
			waitHealthy(b, r)
			ctx := context.Background()
			sessions := make([]*Session, 64)
			for i := range sessions {
				sessions[i] = newTestSession(b, sec, time.Hour)
			}
			var next atomic.Uint64
			b.SetParallelism(150)
			b.ReportAllocs()
			cpu0, rcpu0 := processCPU(), redisCPU(b, srv)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n := next.Add(1)
					if err := r.Accept(ctx, sessions[n%64], n/64+1); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric((processCPU()-cpu0).Seconds()/float64(b.N)*1e6, "client-µs/op")
			b.ReportMetric((redisCPU(b, srv)-rcpu0)/float64(b.N)*1e6, "redis-µs/op")
		})
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
