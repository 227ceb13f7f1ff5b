// Command pqrelay is one relay of a pqrelay pair. Configure it with
// environment variables (README.md lists them); start two, point the app at
// one with x-mte-upstream naming the other.
package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/pqrelay/pqrelay/proxy"
	"github.com/pqrelay/pqrelay/session"
)

func main() {
	st, err := loadSettings(os.Getenv)
	if err != nil {
		os.Stderr.WriteString("pqrelay: " + err.Error() + "\n")
		os.Exit(2)
	}
	level := slog.LevelInfo
	if st.proxy.Debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if err := run(st, log); err != nil {
		log.Error("stopped", "err", err)
		os.Exit(1)
	}
}

func run(st settings, log *slog.Logger) error {
	store, err := newStore(st, log)
	if err != nil {
		return err
	}
	defer store.Close()
	srv, err := proxy.New(st.proxy, store, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(st.addr, strconv.Itoa(st.port)))
	if err != nil {
		return err
	}
	for _, w := range st.proxy.Warnings() {
		log.Warn(w)
	}
	log.Info("listening", "addr", ln.Addr().String(), "role", st.proxy.Role.String(), "suite", session.DefaultSuite().String())

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	select {
	case err := <-serveErr:
		return err
	case sig := <-stop:
		log.Info("shutting down: finishing in-flight requests", "signal", sig.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// shutdownGrace bounds how long SIGTERM waits for in-flight requests.
const shutdownGrace = 30 * time.Second

// newStore returns the session store: Redis when REDIS_URL is set (it
// connects in the background and never blocks start-up), else memory.
func newStore(st settings, log *slog.Logger) (session.Store, error) {
	if st.redis == nil {
		return session.NewMemoryStore(0), nil
	}
	secrets, err := session.NewSecrets(st.proxy.ClientIDSecret)
	if err != nil {
		return nil, err
	}
	log.Info("sessions in Redis", "redis", st.redis.String())
	return session.NewRedisStore(*st.redis, secrets, log)
}
