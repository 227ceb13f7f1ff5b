package session

import (
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

// RedisStore is the Store for fleets of inbound replicas (docs/REDIS.md): an
// in-process layer of sharded maps over Redis, reached through rueidis.
//
//   - Get serves from the local layer with no network round trip once this
//     replica has seen a session. On a local miss it reads the sealed session
//     with DoCache. Every replica's connections track the session key prefix
//     in RESP3 broadcast mode, so a session replaced or deleted anywhere is
//     invalidated in rueidis's cache and in the local layer everywhere. A
//     lost connection may have lost invalidations: entries from before it are
//     confirmed with Redis again before they are served.
//   - Put and Delete write through; sessions are sealed at rest (atrest.go)
//     and expire in Redis when they expire; Delete leaves a tombstone.
//   - Accept checks the session's local window first (a replay within one
//     replica costs nothing), then the record of counters shared in Redis:
//     one BITFIELD per request (redis_replay.go).
//   - While Redis is unreachable the store degrades instead of failing. New
//     pairings are kept on this replica, and their local windows are their
//     whole replay record since no other replica has them; deletes are
//     kept too; both are written when Redis returns. Sessions shared
//     through Redis are refused (another replica could accept the same
//     frame: docs/PROTOCOL.md §6.3), so outbound relays pair anew, unless
//     RedisConfig.OutageLocalWindow keeps them usable on local windows (and,
//     should Redis come back without them, writes them back). The store
//     logs the outage once, reports it through Health and recovers by
//     itself.
type RedisStore struct {
	cfg     RedisConfig
	keys    redisKeys
	secrets *Secrets
	log     *slog.Logger
	now     func() time.Time

	local   *localSessions
	created time.Time // with its monotonic reading, for Kept during outages
	// gen moves whenever invalidations may have been lost (rueidis reports a
	// closed connection, or Redis a flush, as a nil invalidation).
	gen atomic.Uint64
	// down is set until the first connection and during outages. While it
	// is set nothing on the request path waits for Redis.
	down   atomic.Bool
	closed atomic.Bool
	client atomic.Pointer[redisClient]

	mu          sync.Mutex
	pending     map[ID]*Session // written during an outage; nil means deleted
	downSince   time.Time
	downErr     error
	lastDownLog time.Time
	sealLog     time.Time // last warnings, for warnEvery
	lostLog     time.Time

	wake  chan struct{} // an outage began: probe until it ends
	check chan struct{} // a connection closed: is Redis still there?
	stop  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once

	// stats count round trips, for tests and metrics.
	stats struct {
		loads, accepts, stamps, invalidations, writeBacks atomic.Uint64
	}
}

type redisClient struct{ rueidis.Client }

var _ Store = (*RedisStore)(nil)

// ErrStoreUnavailable is returned by Accept for a session shared through
// Redis while Redis is unreachable (unless RedisConfig.OutageLocalWindow).
var ErrStoreUnavailable = errors.New("session: shared store unavailable")

var errBadReply = errors.New("session: unexpected reply from redis")

// redisKeyPrefix begins every key in Redis.
const redisKeyPrefix = "pqrelay:"

// redisKeys are the key names of one store (docs/REDIS.md): under
// pqrelay: for a relay without DOMAIN_MAP, under pqrelay:d:<host>: for a
// DOMAIN_MAP entry's, so that no entry finds another's sessions or replay
// records. No namespace's keys begin with another's: a host has no colon
// but before its port, and the default's next letter is never d.
type redisKeys struct {
	session string // + hex id: the sealed session
	window  string // + the replay record's chunk (redis_replay.go)
	epoch   string // the Redis time, in µs, when this fleet's data began
}

func keysFor(namespace string) redisKeys {
	p := redisKeyPrefix
	if namespace != "" {
		p += "d:" + namespace + ":"
	}
	return redisKeys{session: p + "s:", window: p + "r:", epoch: p + "epoch"}
}

const (
	// loadAttempts bounds how often a load retries when an invalidation for
	// the same shard arrives while it reads.
	loadAttempts = 3
	// writeTimeout bounds Put's and Delete's Redis writes beyond the dial
	// timeout; they do not follow the caller's cancellation (a pairing whose
	// client went away must still be written or kept pending).
	writeTimeout = time.Second
	// sweepEvery drops expired sessions from the local layer.
	sweepEvery = time.Minute
)

// NewRedisStore returns at once. It connects in the background, retrying
// with back-off and logging failures at most every few seconds, and serves
// from its local layer meanwhile. Close stops it.
func NewRedisStore(cfg RedisConfig, secrets *Secrets, log *slog.Logger) (*RedisStore, error) {
	if len(cfg.Addrs) == 0 {
		return nil, redisURLError("no address")
	}
	if secrets == nil {
		return nil, errors.New("session: NewRedisStore needs the relay's Secrets")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &RedisStore{
		cfg:     cfg.withDefaults(),
		keys:    keysFor(cfg.Namespace),
		secrets: secrets,
		log:     log.With("redis", cfg.String()),
		now:     time.Now,
		local:   newLocalSessions(),
		created: time.Now(),
		pending: make(map[ID]*Session),
		wake:    make(chan struct{}, 1),
		check:   make(chan struct{}, 1),
		stop:    make(chan struct{}),
	}
	r.down.Store(true)
	r.downSince = r.now()
	r.downErr = errors.New("not connected yet")
	r.wg.Add(2)
	go r.run()
	go r.sweep()
	return r, nil
}

// Get returns the live session with id: from the local layer when it holds
// the session (no allocation, no round trip), else from Redis.
func (r *RedisStore) Get(ctx context.Context, id ID) (*Session, error) {
	e := r.local.get(id)
	if e != nil && !e.s.Expired(r.now()) {
		if e.servable(r.gen.Load(), r.down.Load(), r.cfg.OutageLocalWindow) {
			return e.s, nil
		}
		if r.down.Load() { // shared, or invalidated: not safe without Redis
			return nil, ErrUnknownSession
		}
		return r.load(ctx, id, e) // confirm, or learn what replaced it
	}
	if r.down.Load() {
		return nil, ErrUnknownSession
	}
	return r.load(ctx, id, nil)
}

// GetLocal returns the session with id if the local layer can serve it
// without Redis. A caller that must not let unauthenticated ids reach Redis
// verifies the client id when GetLocal misses, then calls Get.
func (r *RedisStore) GetLocal(id ID) (*Session, bool) {
	e := r.local.get(id)
	if e == nil || e.s.Expired(r.now()) || !e.servable(r.gen.Load(), r.down.Load(), r.cfg.OutageLocalWindow) {
		return nil, false
	}
	return e.s, true
}

// load reads id from Redis into the local layer. old is the local entry
// being confirmed, if any: it is kept (with its replay window) when Redis
// holds the same session, dropped when Redis holds none, and served as it is
// when Redis cannot be reached. With OutageLocalWindow, a session that Redis
// lost is written back instead of dropped (writesBack).
func (r *RedisStore) load(ctx context.Context, id ID, old *localEntry) (*Session, error) {
	c := r.client.Load()
	if c == nil {
		return nil, ErrUnknownSession
	}
	key := r.keys.sessionKey(id)
	cached := true
	var s *Session
	for range loadAttempts {
		gen, epoch := r.gen.Load(), r.local.epoch(id)
		r.stats.loads.Add(1)
		get := c.B().Get().Key(key)
		var blob []byte
		var err error
		if cached {
			blob, err = c.DoCache(ctx, get.Cache(), MaxLifetime).AsBytes()
		} else {
			blob, err = c.Do(ctx, get.Build()).AsBytes()
		}
		if rueidis.IsRedisNil(err) && r.writesBack(old) {
			err = r.writeBack(ctx, c, id, old.s)
			if err == nil {
				// Read what Redis holds now, ours or another replica's
				// (a replica racing us wrote the same session), past
				// rueidis's cached nil.
				cached = false
				continue
			}
		}
		switch {
		case rueidis.IsRedisNil(err) || (err == nil && len(blob) == 0): // missing, or a tombstone
			if r.local.epoch(id) != epoch {
				// A write arrived while we read: another replica's
				// write-back of the session we were confirming, say.
				// Read what it wrote rather than give up on it.
				cached = false
				continue
			}
			r.local.drop(id, old, epoch)
			return nil, ErrUnknownSession
		case err != nil:
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			r.markDown(err)
			if old != nil && old.servable(0, true, r.cfg.OutageLocalWindow) {
				return old.s, nil // outage: serve what we know
			}
			return nil, ErrUnknownSession
		}
		if s, err = r.secrets.OpenSession(id, blob); err != nil {
			r.warnSealed()
			r.local.drop(id, old, epoch)
			return nil, ErrUnknownSession
		}
		if s.Expired(r.now()) {
			return nil, ErrUnknownSession
		}
		if got, ok := r.local.install(id, s, gen, epoch); ok {
			return got, nil
		}
		// An invalidation in this shard arrived while we read: read again,
		// rueidis has dropped its cached copy by now.
	}
	if s == nil { // every attempt saw the key missing, then written
		return nil, ErrUnknownSession
	}
	return s, nil
}

// writesBack reports whether old, a session this replica holds that Redis
// no longer has, goes back into Redis rather than being dropped. A missing
// key means Redis lost it (a restart without persistence, a failover to a
// replica that lagged, a flush), not that a replica deleted it: Delete leaves
// a tombstone (only if Redis lost that too can a deleted session come back;
// docs/REDIS.md, "Outages"). With OutageLocalWindow, replicas serve such sessions
// from memory until they notice the loss, each on its own window, and the
// replay record went with the data anyway; writing the session back keeps it
// usable on every replica, where dropping it would make outbound relays
// pair anew and, while replicas still disagree about the outage, fail
// requests (a pairing on one replica, its resend on another). By default a
// lost session is dropped: its replay record is gone, and the fleet refuses
// what it cannot check.
func (r *RedisStore) writesBack(old *localEntry) bool {
	return r.cfg.OutageLocalWindow && old != nil && old.gen.Load() != invalidatedGen && !old.s.Expired(r.now())
}

// writeBack writes s if its key is still missing (SET NX: the replicas that
// hold s race to write the same session, and one wins). It logs the loss.
func (r *RedisStore) writeBack(ctx context.Context, c *redisClient, id ID, s *Session) error {
	cmd, ok := r.writeCmd(c, id, s, r.now(), true)
	if !ok {
		return rueidis.Nil // expired meanwhile: the key is missing for good
	}
	r.warnLost()
	r.stats.writeBacks.Add(1)
	r.local.expectEcho(id)
	res := c.Do(ctx, cmd)
	if err := res.Error(); err != nil {
		r.local.cancelEcho(id) // not written: another replica was first, or an error
		if rueidis.IsRedisNil(err) {
			return nil
		}
		return err
	}
	return nil
}

// Put stores s locally at once and in Redis until s.Expires. While Redis is
// unreachable s is kept locally and written when Redis returns.
func (r *RedisStore) Put(ctx context.Context, s *Session) error {
	id := s.ClientID.ID()
	gen := r.gen.Load()
	r.mu.Lock()
	if r.down.Load() {
		// Only this replica will hold s until Redis returns.
		r.local.put(id, s, gen, scopeLocal)
		r.pending[id] = s
		r.mu.Unlock()
		return nil
	}
	r.mu.Unlock()
	r.local.put(id, s, gen, scopeShared)
	if err := r.write(ctx, id, s); err != nil {
		r.deferWrite(id, s, err)
		return nil
	}
	r.local.confirm(id, s, gen)
	return nil
}

// Delete forgets id here and leaves a tombstone in Redis, which tells every
// other replica.
func (r *RedisStore) Delete(ctx context.Context, id ID) error {
	r.local.remove(id)
	if r.deferIfDown(id, nil) {
		return nil
	}
	if err := r.write(ctx, id, nil); err != nil {
		r.deferWrite(id, nil, err)
	}
	return nil
}

// write sets the session key for id to s, or to a tombstone if s is nil.
func (r *RedisStore) write(ctx context.Context, id ID, s *Session) error {
	c := r.client.Load()
	if c == nil {
		return ErrStoreUnavailable
	}
	cmd, ok := r.writeCmd(c, id, s, r.now(), false)
	if !ok {
		return nil // expired: nothing to share
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.DialTimeout+writeTimeout)
	defer cancel()
	r.local.expectEcho(id)
	return r.wrote(id, c.Do(ctx, cmd))
}

// tombstone is what Delete leaves under a session key, for the longest a
// session can live, so that a missing key always means Redis lost the
// session and never that a replica deleted it (see writesBack). An empty
// value: a sealed session never is.
const tombstone = ""

// writeCmd is the command that writes s, or a tombstone if s is nil, only if
// the key is missing when nx is set; ok is false when s has expired and
// there is nothing to write.
func (r *RedisStore) writeCmd(c *redisClient, id ID, s *Session, now time.Time, nx bool) (cmd rueidis.Completed, ok bool) {
	key := r.keys.sessionKey(id)
	value, ttl := tombstone, MaxLifetime.Milliseconds()
	if s != nil {
		if ttl = s.Expires.Sub(now).Milliseconds(); ttl <= 0 {
			return cmd, false
		}
		value = rueidis.BinaryString(r.secrets.SealSession(s))
	}
	set := c.B().Set().Key(key).Value(value)
	if nx {
		return set.Nx().PxMilliseconds(ttl).Build(), true
	}
	return set.PxMilliseconds(ttl).Build(), true
}

// wrote settles the echo expected for a write of id from its result.
func (r *RedisStore) wrote(id ID, res rueidis.RedisResult) error {
	err := res.Error()
	if err != nil {
		r.local.cancelEcho(id)
	}
	return err
}

// Accept checks counter against the session's local window, then against
// the record all replicas share in Redis: one command per request, none for
// a replay this replica has seen itself, none for a session only this
// replica holds. Call it only for frames whose timestamp the caller found
// within MaxClockSkew: the shared record forgets counters once their frames
// must be stale (redis_replay.go). While Redis is unreachable, frames of
// shared sessions get ErrStoreUnavailable, or with OutageLocalWindow the
// local window alone decides.
func (r *RedisStore) Accept(ctx context.Context, s *Session, counter uint64) error {
	if !s.Accept(counter) {
		return ErrReplay
	}
	if e := r.local.get(s.ClientID.ID()); e != nil && e.s == s && e.useLocally() {
		return nil
	}
	if r.down.Load() {
		return r.acceptDegraded()
	}
	c := r.client.Load()
	if c == nil {
		return r.acceptDegraded()
	}
	r.stats.accepts.Add(1)
	seen, err := r.acceptShared(ctx, c, s, counter)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.markDown(err)
		return r.acceptDegraded()
	}
	if seen {
		return ErrReplay
	}
	return nil
}

func (r *RedisStore) acceptDegraded() error {
	if r.cfg.OutageLocalWindow {
		return nil
	}
	return ErrStoreUnavailable
}

// Serving reports whether the store can serve shared sessions: Redis is
// reachable, or REDIS_OUTAGE=local-window keeps serving without it
// (docs/REDIS.md "Outages"). A relay's readiness follows it.
func (r *RedisStore) Serving() bool {
	return !r.closed.Load() && (!r.down.Load() || r.cfg.OutageLocalWindow)
}

// Kept is how long Redis has held this fleet's data, on Redis's own clock:
// the age of an epoch key that replicas set when it is missing, so a Redis
// that restarted empty or was flushed starts a new epoch. Sessions lost
// otherwise (a failover to a Redis replica that missed writes, eviction
// under memory pressure) are not seen here; docs/REDIS.md says how to
// configure Redis so that they cannot be.
//
// While Redis is unreachable a replica can vouch only for what it holds
// itself. With the default outage policy that is nothing (0): another
// replica may have run a request on a session this one does not have. With
// RedisConfig.OutageLocalWindow it is this store's own age, the same
// trade-off that setting makes for replays: a request another replica ran
// during the outage may run again here.
func (r *RedisStore) Kept(ctx context.Context) time.Duration {
	c := r.client.Load()
	if c == nil || r.down.Load() {
		if r.cfg.OutageLocalWindow {
			return time.Since(r.created)
		}
		return 0
	}
	us, err := r.epochAge(ctx, c)
	if err != nil || us < 0 {
		return 0
	}
	return time.Duration(us) * time.Microsecond
}

// epochAge returns the epoch's age in µs, starting a new epoch (age 0) when
// Redis has none.
func (r *RedisStore) epochAge(ctx context.Context, c *redisClient) (int64, error) {
	res := c.DoMulti(ctx, c.B().Time().Build(), c.B().Get().Key(r.keys.epoch).Build())
	t, err := res[0].AsStrSlice()
	if err != nil {
		return 0, err
	}
	if len(t) != 2 {
		return 0, errBadReply
	}
	sec, err1 := strconv.ParseInt(t[0], 10, 64)
	usec, err2 := strconv.ParseInt(t[1], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errBadReply
	}
	now := sec*1_000_000 + usec
	epoch, err := res[1].AsInt64()
	if rueidis.IsRedisNil(err) {
		// Replicas racing here both write about now; one of them wins.
		err := c.Do(ctx, c.B().Set().Key(r.keys.epoch).Value(strconv.FormatInt(now, 10)).Nx().Build()).Error()
		if err != nil && !rueidis.IsRedisNil(err) {
			return 0, err
		}
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return now - epoch, nil
}

// Health is nil when Redis is reachable and every write kept during an
// outage has been flushed; otherwise it says since when Redis is
// unreachable and why. It never holds secrets.
func (r *RedisStore) Health() error {
	if r.closed.Load() {
		return errors.New("redis store closed")
	}
	if !r.down.Load() {
		return nil
	}
	r.mu.Lock()
	since, cause, n := r.downSince, r.downErr, len(r.pending)
	r.mu.Unlock()
	msg := "redis unreachable since " + since.UTC().Format(time.RFC3339) + ": " + errText(cause)
	if n > 0 {
		msg += " (" + strconv.Itoa(n) + " session writes waiting)"
	}
	return errors.New(msg)
}

// Close stops reconnecting and closes the connections. Writes still waiting
// for Redis are lost (logged). The local layer stays readable.
func (r *RedisStore) Close() error {
	r.once.Do(func() {
		r.closed.Store(true)
		r.down.Store(true)
		close(r.stop)
		r.wg.Wait()
		if c := r.client.Load(); c != nil {
			c.Close()
		}
		r.mu.Lock()
		n := len(r.pending)
		r.mu.Unlock()
		if n > 0 {
			r.log.Warn("redis store closed with session writes never flushed", "waiting", n)
		}
	})
	return nil
}

// deferIfDown keeps a write for later if Redis is down.
func (r *RedisStore) deferIfDown(id ID, s *Session) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.down.Load() {
		return false
	}
	r.pending[id] = s
	return true
}

// deferWrite keeps a write that failed with err and starts an outage.
// Both happen under mu, so the recovery that ends the outage flushes it.
func (r *RedisStore) deferWrite(id ID, s *Session, err error) {
	r.mu.Lock()
	r.pending[id] = s
	r.markDownLocked(err)
	r.mu.Unlock()
}

func (r *RedisStore) markDown(err error) {
	r.mu.Lock()
	r.markDownLocked(err)
	r.mu.Unlock()
}

// markDownLocked starts an outage: logged once (and at most every logEvery
// if Redis flaps), and the supervisor is woken to probe for recovery.
func (r *RedisStore) markDownLocked(err error) {
	if r.closed.Load() || r.down.Load() {
		return
	}
	now := r.now()
	r.down.Store(true)
	r.downSince, r.downErr = now, err
	if now.Sub(r.lastDownLog) >= r.cfg.logEvery {
		r.lastDownLog = now
		msg := "redis unreachable: sessions shared through it refused until it returns (outbound relays pair anew); new pairings kept on this replica"
		if r.cfg.OutageLocalWindow {
			msg = "redis unreachable: serving known sessions from memory with local replay windows only; new pairings kept until it returns"
		}
		r.log.Warn(msg, "err", errText(err))
	}
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *RedisStore) warnSealed() {
	r.warnEvery(&r.sealLog, "a session in redis does not open: another fleet with a different CLIENT_ID_SECRET shares the database, or it was altered")
}

func (r *RedisStore) warnLost() {
	r.warnEvery(&r.lostLog, "redis lost sessions this replica holds (a restart without persistence, a failover or a flush): writing them back, as REDIS_OUTAGE=local-window allows")
}

// warnEvery logs msg unless it was logged (at *last) less than logEvery ago:
// a condition met on every request must not flood the log.
func (r *RedisStore) warnEvery(last *time.Time, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(*last) >= r.cfg.logEvery {
		*last = now
		r.log.Warn(msg)
	}
}

// run is the supervisor: it connects, then after every outage probes until
// Redis answers and the kept writes are flushed.
func (r *RedisStore) run() {
	defer r.wg.Done()
	c := r.connect()
	if c == nil {
		return
	}
	if r.closed.Load() { // Close ran while we connected
		c.Close()
		return
	}
	r.client.Store(c) // if Close runs from here on, it closes c
	for {
		if !r.recover() {
			return
		}
		select {
		case <-r.stop:
			return
		case <-r.wake:
		case <-r.check:
			// An idle replica learns of an outage here, not from the
			// next request, so Health and the log tell the truth.
			if !r.down.Load() {
				if err := r.ping(c); err != nil {
					r.markDown(err)
				}
			}
		}
	}
}

func (r *RedisStore) ping(c *redisClient) error {
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.DialTimeout+writeTimeout)
	defer cancel()
	return c.Do(ctx, c.B().Ping().Build()).Error()
}

// connect makes the rueidis client, retrying with back-off.
func (r *RedisStore) connect() *redisClient {
	backoff := r.cfg.retryMin
	var lastLog time.Time
	for attempt := 1; ; attempt++ {
		c, err := rueidis.NewClient(r.clientOption())
		if err == nil {
			if attempt > 1 {
				r.log.Info("redis connected", "attempts", attempt)
			}
			return &redisClient{c}
		}
		r.mu.Lock()
		r.downErr = err
		r.mu.Unlock()
		if now := time.Now(); now.Sub(lastLog) >= r.cfg.logEvery {
			lastLog = now
			r.log.Warn("redis unreachable at start-up: retrying with back-off, serving sessions from memory meanwhile",
				"attempt", attempt, "err", errText(err))
		}
		if !r.sleep(backoff) {
			return nil
		}
		backoff = min(2*backoff, r.cfg.retryMax)
	}
}

// recover waits out an outage: PING, then flush the kept writes, with
// back-off, until the store is up. It returns false when the store closes.
func (r *RedisStore) recover() bool {
	backoff := r.cfg.retryMin
	for r.down.Load() {
		if r.closed.Load() {
			return false
		}
		err := r.tryRecover()
		if err == nil {
			break
		}
		r.mu.Lock()
		r.downErr = err
		r.mu.Unlock()
		if !r.sleep(backoff) {
			return false
		}
		backoff = min(2*backoff, r.cfg.retryMax)
	}
	return true
}

func (r *RedisStore) tryRecover() error {
	c := r.client.Load()
	if err := r.ping(c); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.DialTimeout+writeTimeout)
	defer cancel()
	// Start the data's epoch (Kept) now if Redis has none, rather than at
	// the first session some relay finds missing.
	if _, err := r.epochAge(ctx, c); err != nil {
		return err
	}
	written, kept := 0, 0
	for {
		r.mu.Lock()
		if len(r.pending) == 0 {
			since := r.downSince
			r.down.Store(false)
			r.downErr = nil
			r.mu.Unlock()
			r.log.Info("redis reachable: shared sessions and replay record back in use",
				"down_for", r.now().Sub(since).Round(time.Millisecond).String(),
				"written", written, "kept_on_this_replica", kept)
			return nil
		}
		batch := make(map[ID]*Session, len(r.pending))
		for id, s := range r.pending {
			batch[id] = s
		}
		r.mu.Unlock()
		w, k, err := r.flush(ctx, c, batch)
		written, kept = written+w, kept+k
		if err != nil {
			return err
		}
	}
}

// flush writes a batch of kept writes in one pipeline and forgets those that
// were not replaced meanwhile. A session that accepted frames on its local
// window alone is not written: it stays on this replica (kept counts them).
func (r *RedisStore) flush(ctx context.Context, c *redisClient, batch map[ID]*Session) (written, kept int, err error) {
	gen := r.gen.Load()
	ids := make([]ID, 0, len(batch))
	cmds := make(rueidis.Commands, 0, len(batch))
	now := r.now()
	for id, s := range batch {
		live := s == nil || s.Expires.After(now)
		if !live || (s != nil && !r.local.claimForFlush(id, s)) {
			// Expired, no longer held, or used here alone: nothing to
			// write. A used session keeps its pending entry, so that
			// invalidations and confirmations leave it alone.
			if live {
				kept++
			}
			r.forgetPending(id, s)
			continue
		}
		cmd, ok := r.writeCmd(c, id, s, now, false)
		if !ok {
			r.forgetPending(id, s)
			continue
		}
		r.local.expectEcho(id)
		cmds = append(cmds, cmd)
		ids = append(ids, id)
	}
	if len(cmds) == 0 {
		return 0, kept, nil
	}
	for i, res := range c.DoMulti(ctx, cmds...) {
		if e := r.wrote(ids[i], res); e != nil {
			if err == nil {
				err = e
			}
			continue
		}
		id, s := ids[i], batch[ids[i]]
		r.forgetPending(id, s)
		if s != nil {
			r.local.confirm(id, s, gen)
		}
		written++
	}
	return written, kept, err
}

// forgetPending drops id's kept write if it is still s.
func (r *RedisStore) forgetPending(id ID, s *Session) {
	r.mu.Lock()
	if cur, ok := r.pending[id]; ok && cur == s {
		delete(r.pending, id)
	}
	r.mu.Unlock()
}

func (r *RedisStore) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.stop:
		return false
	case <-t.C:
		return true
	}
}

func (r *RedisStore) sweep() {
	defer r.wg.Done()
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			now := r.now()
			r.local.sweep(now)
			r.mu.Lock()
			for id, s := range r.pending {
				if s != nil && s.Expired(now) {
					delete(r.pending, id)
				}
			}
			r.mu.Unlock()
		}
	}
}

// onInvalidations runs on rueidis's reading goroutine for every key of the
// session prefix written by any client, this one included; nil means that
// any key may have changed (a closed connection, a flush).
func (r *RedisStore) onInvalidations(keys []rueidis.RedisMessage) {
	if keys == nil {
		r.gen.Add(1)
		r.local.forgetEchoes()
		select {
		case r.check <- struct{}{}:
		default:
		}
		return
	}
	for i := range keys {
		k, err := keys[i].ToString()
		if err != nil {
			continue
		}
		if id, ok := r.keys.idFromSessionKey(k); ok {
			r.local.invalidate(id)
		}
	}
	r.stats.invalidations.Add(uint64(len(keys))) // after: tests wait on it
}

func (r *RedisStore) clientOption() rueidis.ClientOption {
	c := &r.cfg
	dialer := net.Dialer{Timeout: c.DialTimeout}
	opt := rueidis.ClientOption{
		InitAddress: c.Addrs,
		Username:    c.Username,
		Password:    c.password,
		SelectDB:    c.DB,
		TLSConfig:   c.tlsConfig(),
		Dialer:      dialer,
		ClientName:  "pqrelay",
		// Broadcast tracking of the session prefix: every replica hears
		// of every session write, including writes to sessions it never
		// read (those it paired itself).
		ClientTrackingOptions: []string{"PREFIX", r.keys.session, "BCAST"},
		OnInvalidations:       r.onInvalidations,
		// One connection per node. rueidis keeps a cache per connection
		// and each connection hears every invalidation; with several, our
		// callback could run for one while another still served the stale
		// copy. On one connection rueidis drops its copy before calling us.
		// With BCAST, Redis sends a pass's invalidations after that pass's
		// replies (so a write's own echo comes after its reply, and a read
		// after our write must bypass the cache), and two writes of one key
		// in one pass yield one invalidation: the echo count assumes our
		// writes of a key are further apart (one Put per pairing, one
		// successful SET NX per write-back). Auto-pipelining keeps one
		// connection far from full.
		PipelineMultiplex: -1,
		// Every request sends one command; a short wait after a flush (only
		// while other commands are in flight) lets one write carry many of
		// them instead of a syscall each (benchmarks/redis/RESULTS.md,
		// BenchmarkRedisStoreAccept).
		MaxFlushDelay: max(c.maxFlushDelay, 0),
		// Sealed sessions are 214 bytes; this holds tens of thousands.
		CacheSizeEachConn: 16 << 20,
		// A stuck Redis is noticed within seconds, not the default ten.
		ConnWriteTimeout: c.DialTimeout + writeTimeout,
		// rueidis retries read-only commands on network errors, without
		// end when the context has no deadline. A few quick retries ride
		// out a failover; after that the store degrades instead.
		RetryDelay: func(attempts int, _ rueidis.Completed, _ error) time.Duration {
			if attempts > 3 {
				return -1
			}
			return time.Duration(attempts) * 20 * time.Millisecond
		},
	}
	if c.MasterSet != "" {
		opt.Sentinel = rueidis.SentinelOption{
			MasterSet: c.MasterSet,
			Dialer:    dialer,
			TLSConfig: c.tlsConfig(),
			// Reconcile with the sentinels now and then as well as on
			// +switch-master, which can be missed (rueidis's advice).
			TopologyRefreshInterval: 5 * time.Second,
		}
	}
	return opt
}

func (k redisKeys) sessionKey(id ID) string {
	b := make([]byte, 0, len(k.session)+2*IDLen)
	return string(hex.AppendEncode(append(b, k.session...), id[:]))
}

func (k redisKeys) idFromSessionKey(key string) (ID, bool) {
	var id ID
	hexID, ok := strings.CutPrefix(key, k.session)
	if !ok || len(hexID) != 2*IDLen {
		return id, false
	}
	if _, err := hex.Decode(id[:], []byte(hexID)); err != nil {
		return id, false
	}
	return id, true
}

func errText(err error) string {
	if err == nil {
		return "unknown error"
	}
	return err.Error()
}
