// Command portcullis is the Portcullis external authorization service.
//
//	portcullis serve [flags]   serve decisions from Kubernetes objects or a directory
//	portcullis version         print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"go.uber.org/zap/zapcore"
	"golang.org/x/sync/errgroup"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/portcullis-dev/portcullis/controllers"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "version":
		fmt.Println(versionString())
	case "-h", "--help", "help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "portcullis: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "portcullis: %v\n", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `Portcullis: two-factor (App + Custom) external authorization for Kubernetes ingress.

Usage:
  portcullis serve [flags]   serve decisions from Kubernetes objects (--source=kubernetes)
                             or a watched directory of the same YAML (--source=files)
  portcullis version         print the version

Run "portcullis serve -h" for the flags.
`)
}

func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	return "portcullis " + v
}

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

	policy := controllers.NewPolicy(log.WithName("policy"))
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return controllers.ListenAndServe(ctx, o.healthAddr, controllers.ProbeHandler(policy)) })
	if o.metricsAddr != "0" {
		g.Go(func() error { return controllers.ListenAndServe(ctx, o.metricsAddr, controllers.MetricsHandler()) })
	}

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
			Cache:                   controllers.CacheOptions(o.namespace),
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
		if err := controllers.SetupKubernetes(mgr, policy); err != nil {
			return fmt.Errorf("controllers: %w", err)
		}
		log.Info("Serving policies from Kubernetes", "namespace", o.namespace, "leaderElect", o.leaderElect)
		g.Go(func() error { return mgr.Start(ctx) })
	default:
		return fmt.Errorf("--source must be kubernetes or files, not %q", o.source)
	}
	err := g.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
