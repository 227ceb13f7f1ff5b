package session

import (
	"context"
	"encoding/hex"
	"strconv"

	"github.com/redis/rueidis"
)

// The replay record all replicas share (docs/REDIS.md §6.2): one bit per
// request counter, in Redis bitmaps of chunkCounters counters each. A request
// costs one BITFIELD, auto-pipelined by rueidis with every other request's
// commands, that sets the counter's bit and returns its old value, so two
// replicas racing on one counter cannot both see it clear.
//
//	key:   pqrelay:r:<hex id> (pqrelay:d:<host>:r:… for a DOMAIN_MAP entry):<created, Unix ms>:<counter / chunkCounters>
//	value: bit 0: "expiry set" marker; bit 1+counter%chunkCounters: seen
//
// A chunk is created without an expiry by its first BITFIELD. The same
// BITFIELD returns the marker; whoever reads it clear stamps the chunk, once
// per chunk and replica at most, in one pipeline: PEXPIREAT the session's
// expiry + MaxClockSkew, then the marker, then PEXPIRE chunkRetire on the
// previous chunk. Counters are handed out in order, so once a chunk is in use
// the previous one's frames were all sealed by now; their timestamps go stale
// within MaxClockSkew (the proxy refuses stale frames before Accept), so the
// previous chunk need only outlive that, with room for clock differences
// between replicas. A busy session so keeps about chunkRetire worth of
// counters, a bit each; an idle one a single chunk.
const (
	// chunkCounters per bitmap: 1 KiB. A stamp (one extra round trip in a
	// pipeline) costs one request in 8,192.
	chunkCounters = 8192
	// chunkRetire is how long a chunk lives after the next one starts:
	// frames from it are stale MaxClockSkew after that, and as much again
	// is allowed for replica clocks that disagree.
	chunkRetire = 3 * MaxClockSkew
)

// appendChunkKey appends the key of chunk of s's replay record. A session
// replaced under the same id has another creation time, so another record.
func (k redisKeys) appendChunkKey(dst []byte, s *Session, chunk uint64) []byte {
	id := s.ClientID.ID()
	dst = append(dst, k.window...)
	dst = hex.AppendEncode(dst, id[:])
	dst = append(dst, ':')
	dst = strconv.AppendInt(dst, s.Created.UnixMilli(), 10)
	dst = append(dst, ':')
	return strconv.AppendUint(dst, chunk, 10)
}

func (k redisKeys) chunkKey(s *Session, chunk uint64) string {
	var b [64 + 2*IDLen + 2 + 2*20]byte // on the stack for short namespaces
	return string(k.appendChunkKey(b[:0], s, chunk))
}

// acceptShared records counter in the shared record and reports whether
// some replica had recorded it before.
func (r *RedisStore) acceptShared(ctx context.Context, c *redisClient, s *Session, counter uint64) (seen bool, err error) {
	chunk := counter / chunkCounters
	key := r.keys.chunkKey(s, chunk)
	bits, err := c.Do(ctx, c.B().Bitfield().Key(key).
		Set("u1", int64(counter%chunkCounters)+1, 1).
		Get("u1", 0).Build()).AsIntSlice()
	if err != nil {
		return false, err
	}
	if len(bits) != 2 {
		return false, errBadReply
	}
	if bits[1] == 0 {
		r.stampChunk(ctx, c, s, key, chunk)
	}
	return bits[0] != 0, nil
}

// stampChunk gives a new chunk its expiry and retires the previous one. The
// expiry goes first: if we stop between the two, the marker is still clear
// and the next request stamps again, so no chunk is left without expiry.
// Errors are left to the next command to notice: the counter is recorded.
func (r *RedisStore) stampChunk(ctx context.Context, c *redisClient, s *Session, key string, chunk uint64) {
	cmds := make(rueidis.Commands, 0, 3)
	cmds = append(cmds,
		c.B().Pexpireat().Key(key).MillisecondsTimestamp(s.Expires.Add(MaxClockSkew).UnixMilli()).Build(),
		c.B().Setbit().Key(key).Offset(0).Value(1).Build())
	if chunk > 0 {
		cmds = append(cmds, c.B().Pexpire().Key(r.keys.chunkKey(s, chunk-1)).Milliseconds(chunkRetire.Milliseconds()).Build())
	}
	r.stats.stamps.Add(1)
	c.DoMulti(ctx, cmds...)
}
