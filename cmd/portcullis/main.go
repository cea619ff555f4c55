// Command portcullis is the Portcullis external authorization service.
//
//	portcullis serve [flags]   serve decisions from Kubernetes objects or a directory
//	portcullis sign [flags]    sign a request (SDK-HMAC-SHA256): print headers or a curl line
//	portcullis check [flags]   decide one request against a directory of manifests
//	portcullis version         print the version
package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
)

// version and commit are set at build time:
// -ldflags "-X main.version=v0.1.0 -X main.commit=$(git rev-parse --short HEAD)".
var (
	version = "dev"
	commit  = ""
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "sign":
		err = sign(os.Args[2:], os.Stdout)
	case "check":
		var allowed bool
		allowed, err = check(os.Args[2:], os.Stdout)
		if err == nil && !allowed {
			os.Exit(3)
		}
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
  portcullis sign [flags]    sign a request with an app key and secret (SDK-HMAC-SHA256)
                             and print its headers or a ready curl line
  portcullis check [flags]   decide one request against a directory of manifests and print
                             the decision, the matched binding and each factor's outcome
                             (exit status 3 when denied)
  portcullis version         print the version

Run "portcullis <command> -h" for the flags of a command.
`)
}

func versionString() string {
	v, c := version, commit
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && c == "" && len(s.Value) >= 7 {
				c = s.Value[:7]
			}
		}
	}
	if c == "" {
		c = "unknown"
	}
	return fmt.Sprintf("portcullis %s (commit %s, %s)", v, c, runtime.Version())
}
