package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap/zapcore"
	"golang.org/x/sync/errgroup"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/portcullis-dev/portcullis/authz/engine"
	"github.com/portcullis-dev/portcullis/authz/httpauth"
	"github.com/portcullis-dev/portcullis/controllers"
)

type serveOptions struct {
	source             string
	files              string
	kubeconfig         string
	namespace          string
	metricsAddr        string
	healthAddr         string
	leaderElect        bool
	leaderElectionNS   string
	logDevelopment     bool
	logLevel           int
	fileDebounce       time.Duration
	cacheSyncTimeout   time.Duration
	gracefulShutdownTO time.Duration
	grpcAddr           string
	httpAddr           string
	maxClockSkew       time.Duration
	maxBodyBytes       int64
	maxHeaders         int
	maxHeaderBytes     int
	trustedProxies     string
	logDecisions       bool
	forwardAuthHeaders string
	pprofAddr          string
	memoryLimitRatio   float64
}

func serve(args []string) error {
	var o serveOptions
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&o.source, "source", "kubernetes", "where policies come from: kubernetes (CRDs and labelled Secrets) or files (a directory of the same YAML)")
	fs.StringVar(&o.files, "files", "", "directory of policy YAML for --source=files; watched for changes")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster config, then $KUBECONFIG, then ~/.kube/config)")
	fs.StringVar(&o.namespace, "namespace", "", "watch only this namespace (empty: all namespaces)")
	fs.StringVar(&o.metricsAddr, "metrics-addr", ":8080", "address of the Prometheus /metrics endpoint (0 disables it)")
	fs.StringVar(&o.healthAddr, "health-addr", ":8081", "address of /healthz and /readyz")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "elect one replica to write status conditions (every replica serves decisions)")
	fs.StringVar(&o.leaderElectionNS, "leader-election-namespace", "", "namespace of the leader election Lease (default: the pod's namespace)")
	fs.BoolVar(&o.logDevelopment, "log-development", false, "human-readable logs instead of JSON")
	fs.IntVar(&o.logLevel, "v", 0, "log verbosity (1 logs every snapshot build)")
	fs.DurationVar(&o.fileDebounce, "files-debounce", 100*time.Millisecond, "with --source=files, how long to wait for a burst of file changes to settle")
	fs.DurationVar(&o.cacheSyncTimeout, "cache-sync-timeout", 2*time.Minute, "how long to wait for the informer caches to fill before giving up")
	fs.DurationVar(&o.gracefulShutdownTO, "shutdown-timeout", 15*time.Second, "how long to wait for in-flight work on shutdown")
	fs.StringVar(&o.grpcAddr, "grpc-addr", ":9001", "address of the Envoy ext_authz v3 gRPC service (Envoy, Istio, Envoy Gateway)")
	fs.StringVar(&o.httpAddr, "http-addr", ":9002", "address of the HTTP forward-auth endpoint (ingress-nginx, Traefik, Caddy, Envoy HTTP ext_authz)")
	fs.DurationVar(&o.maxClockSkew, "max-clock-skew", 15*time.Minute, "how far X-Sdk-Date of a signed request may be from this server's clock")
	fs.Int64Var(&o.maxBodyBytes, "max-body-bytes", 64<<10, "largest request body read by the HTTP endpoint and sent to an authorizer with sendBody: true (longer bodies are cut)")
	fs.IntVar(&o.maxHeaders, "max-request-headers", engine.DefaultMaxHeaders, "most headers a request may carry; more is refused with 400 REQUEST_PARAMETERS_FAILURE (-1: no limit)")
	fs.IntVar(&o.maxHeaderBytes, "max-request-header-bytes", engine.DefaultMaxHeaderBytes, "most bytes of header names and values a request may carry; more is refused with 400 REQUEST_PARAMETERS_FAILURE (-1: no limit)")
	fs.BoolVar(&o.logDecisions, "log-decisions", false, "log every decision (request id, method, host, path, binding, code, credential; never header values, secrets or AppCodes)")
	fs.StringVar(&o.forwardAuthHeaders, "forward-auth-headers", "auto", "which headers carry the original request on the HTTP endpoint: auto (X-Forwarded-* or X-Original-*; both at once is refused), forwarded (Traefik, Caddy), original (nginx, ingress-nginx) or none (Envoy HTTP ext_authz: the request itself)")
	fs.StringVar(&o.trustedProxies, "trusted-proxy-cidrs", "127.0.0.0/8,::1/128", "comma-separated CIDRs of proxies whose X-Forwarded-For gives the client address (HTTP endpoint)")
	fs.Float64Var(&o.memoryLimitRatio, "memory-limit-ratio", 0.9, "unless GOMEMLIMIT is set, keep the Go heap under this fraction of the container's memory limit (cgroup memory.max), collecting garbage sooner as it nears it; 0: off")
	fs.StringVar(&o.pprofAddr, "pprof-addr", "", "address of net/http/pprof (/debug/pprof/); empty: off. Profiles show request data in memory: bind it to loopback")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve takes no arguments, got %q", fs.Args())
	}

	log := zap.New(zap.UseDevMode(o.logDevelopment), zap.Level(zapcore.Level(-o.logLevel)))
	ctrl.SetLogger(log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	limit, from, err := applyMemoryLimit(o.memoryLimitRatio)
	if err != nil {
		return err
	}
	if limit > 0 {
		log.Info("Go memory limit set", "bytes", limit, "from", from)
	} else if from != "" {
		log.Info("Go memory limit set", "from", from)
	}
	trusted, err := parseCIDRs(o.trustedProxies)
	if err != nil {
		return fmt.Errorf("--trusted-proxy-cidrs: %w", err)
	}
	mode, err := httpauth.ParseMode(o.forwardAuthHeaders)
	if err != nil {
		return fmt.Errorf("--forward-auth-headers: %w", err)
	}
	policy := controllers.NewPolicy(log.WithName("policy"))
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return controllers.ListenAndServe(ctx, o.healthAddr, controllers.ProbeHandler(policy)) })
	if o.metricsAddr != "0" {
		g.Go(func() error { return controllers.ListenAndServe(ctx, o.metricsAddr, controllers.MetricsHandler()) })
	}
	if o.pprofAddr != "" {
		g.Go(func() error { return controllers.ListenAndServe(ctx, o.pprofAddr, pprofHandler()) })
	}
	fe := frontends{
		grpcAddr: o.grpcAddr, httpAddr: o.httpAddr, maxClockSkew: o.maxClockSkew,
		maxBodyBytes: o.maxBodyBytes, maxHeaders: o.maxHeaders, maxHeaderBytes: o.maxHeaderBytes, trusted: trusted, logDecisions: o.logDecisions, mode: mode, log: log.WithName("decide"),
	}
	g.Go(func() error { return fe.run(ctx, policy) })

	switch o.source {
	case "files":
		if o.files == "" {
			return errors.New("--source=files needs --files=DIR")
		}
		log.Info("Serving policies from files", "dir", o.files)
		g.Go(func() error {
			return controllers.RunFiles(ctx, o.files, o.fileDebounce, policy, log.WithName("files"))
		})
	case "kubernetes":
		if o.kubeconfig != "" {
			if err := os.Setenv("KUBECONFIG", o.kubeconfig); err != nil {
				return err
			}
		}
		cfg, err := config.GetConfig()
		if err != nil {
			return fmt.Errorf("kubernetes config: %w (use --kubeconfig, or --source=files to run without a cluster)", err)
		}
		mgr, err := ctrl.NewManager(cfg, ctrl.Options{
			Scheme:                  controllers.Scheme(),
			Cache:                   controllers.WithSourceHealth(controllers.CacheOptions(o.namespace), policy, controllers.DefaultProbeInterval),
			Metrics:                 metricsserver.Options{BindAddress: "0"}, // served above, one endpoint for both sources
			HealthProbeBindAddress:  "0",
			LeaderElection:          o.leaderElect,
			LeaderElectionID:        "portcullis.auth.portcullis.dev",
			LeaderElectionNamespace: o.leaderElectionNS,
			GracefulShutdownTimeout: &o.gracefulShutdownTO,
			Controller:              ctrlconfig.Controller{CacheSyncTimeout: o.cacheSyncTimeout},
		})
		if err != nil {
			return fmt.Errorf("manager: %w", err)
		}
		if _, err := controllers.SetupKubernetes(mgr, policy, o.namespace); err != nil {
			return fmt.Errorf("controllers: %w", err)
		}
		if err := controllers.RegisterFreshness(policy); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		log.Info("Serving policies from Kubernetes", "namespace", o.namespace, "leaderElect", o.leaderElect)
		g.Go(func() error { return mgr.Start(ctx) })
	default:
		return fmt.Errorf("--source must be kubernetes or files, not %q", o.source)
	}
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// pprofHandler serves net/http/pprof on its own mux (never http.DefaultServeMux).
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // heap, allocs, goroutine, ... by name
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
