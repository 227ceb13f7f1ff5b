// Command pqrelay is one relay of a pqrelay pair. Configure it with
// environment variables (README.md lists them); start two, point the app at
// one with x-mte-upstream naming the other.
package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/pqrelay/pqrelay/internal/metrics"
	"github.com/pqrelay/pqrelay/internal/tlsconf"
	"github.com/pqrelay/pqrelay/proxy"
	"github.com/pqrelay/pqrelay/session"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "-h", "-help", "--help":
			writeUsage(os.Stdout)
			return
		case "-version", "--version":
			writeVersion(os.Stdout)
			return
		default:
			os.Stderr.WriteString("pqrelay: unknown argument " + strconv.Quote(os.Args[1]) + "; pqrelay -h lists the environment variables that configure it\n")
			os.Exit(2)
		}
	}
	st, err := loadSettings(os.Getenv)
	if err != nil {
		os.Stderr.WriteString("pqrelay: " + err.Error() + "\n")
		os.Exit(2)
	}
	log := newLogger(os.Stderr, st)
	if err := run(st, log); err != nil {
		log.Error("stopped", "err", err)
		os.Exit(1)
	}
}

func run(st settings, log *slog.Logger) error {
	var rec *metrics.Relay
	var srv *proxy.Server
	if st.metricsPort != 0 {
		// Scrapes start after srv is set: the metrics listener opens below.
		rec = newMetrics(st.redis != nil, func() *proxy.Server { return srv })
		st.proxy.Metrics = rec
	}
	srv, err := proxy.New(st.proxy, storeOpener(st, log), log)
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", net.JoinHostPort(st.addr, strconv.Itoa(st.port)))
	if err != nil {
		return err
	}
	scheme := "http" // srv.Serve adds TLS when TLS_CERT_FILE is set
	if st.tls.Listener != nil {
		scheme = "https"
	}
	for _, w := range st.proxy.Warnings() {
		log.Warn(w)
	}
	v, c := buildVersion()
	log.Info("listening", "addr", ln.Addr().String(), "scheme", scheme, "role", st.proxy.Role.String(), "suite", session.DefaultSuite().String(),
		"version", v, "commit", c)
	stopMetrics, err := serveMetrics(st, rec, log)
	if err != nil {
		ln.Close()
		return err
	}
	defer stopMetrics()

	watchCtx, stopWatching := context.WithCancel(context.Background())
	defer stopWatching()
	go st.tls.Watch(watchCtx, tlsconf.DefaultPollInterval, log)
	// The signals are caught before the first request is served: until
	// then a SIGHUP, whose default is to end the process, would kill a
	// relay that already answers its probes.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	for waiting := true; waiting; {
		select {
		case err := <-serveErr:
			return err
		case <-hup:
			log.Info("SIGHUP: re-reading the TLS files")
			st.tls.Reload(log)
		case sig := <-stop:
			srv.Drain()
			if st.shutdownDelay > 0 {
				log.Info("not ready: still accepting until the delay ends", "signal", sig.String(), "delay", st.shutdownDelay.String())
				time.Sleep(st.shutdownDelay)
			}
			log.Info("shutting down: finishing in-flight requests", "signal", sig.String())
			waiting = false
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// newLogger is LOG_FORMAT's handler at LOG_LEVEL.
func newLogger(w io.Writer, st settings) *slog.Logger {
	opts := &slog.HandlerOptions{Level: st.logLevel}
	if st.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// newMetrics is the relay's set of series, every relay error code among
// the outcomes; srv returns the relay, set before the first scrape, for
// the relay links served and, with Redis, whether a store is degraded.
func newMetrics(redis bool, srv func() *proxy.Server) *metrics.Relay {
	v, c := buildVersion()
	opts := metrics.Options{Version: v, Commit: c, Codes: proxy.ErrorCodes(),
		LinkConnections: func() int { return srv().LinkConnections() }}
	if redis {
		opts.StoreDegraded = func() bool { return srv().StoreDegraded() }
	}
	return metrics.New(opts)
}

// serveMetrics starts the metrics listener on METRICS_PORT, apart from the
// relay's port so that metrics need not face whoever reaches the relay; it
// returns how to stop it. Without rec (METRICS_PORT=0) it starts nothing.
func serveMetrics(st settings, rec *metrics.Relay, log *slog.Logger) (stop func(), err error) {
	if rec == nil {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(st.addr, strconv.Itoa(st.metricsPort)))
	if err != nil {
		return nil, errors.New("METRICS_PORT: " + err.Error())
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", rec.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	log.Info("metrics", "addr", ln.Addr().String(), "path", "/metrics")
	return func() { srv.Close() }, nil
}

// shutdownGrace bounds how long SIGTERM waits for in-flight requests.
const shutdownGrace = 30 * time.Second

// storeOpener opens each site's session store: Redis when REDIS_URL is set
// (it connects in the background and never blocks start-up), each
// DOMAIN_MAP entry's under its own namespace and sealed under its own
// secret, else memory.
func storeOpener(st settings, log *slog.Logger) proxy.StoreOpener {
	return func(namespace string, secrets *session.Secrets) (session.Store, error) {
		if st.redis == nil {
			return session.NewMemoryStore(0), nil
		}
		cfg := *st.redis
		cfg.Namespace = namespace
		if namespace == "" {
			log.Info("sessions in Redis", "redis", cfg.String())
		} else {
			log.Info("sessions in Redis", "redis", cfg.String(), "domain", namespace)
		}
		return session.NewRedisStore(cfg, secrets, log)
	}
}
