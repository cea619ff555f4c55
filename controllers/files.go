package controllers

import (
	"context"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
	"github.com/portcullis-dev/portcullis/authz/compile"
)

// RunFiles serves policy from a directory (--source=files) until ctx is done: it loads and
// watches dir, rebuilds on every good load (a bad one keeps the last good snapshot), and
// rebuilds again when a credential expires. The policy is ready after the first good load;
// if the first load fails RunFiles returns its error.
func RunFiles(ctx context.Context, dir string, debounce time.Duration, policy *Policy, log logr.Logger) error {
	// Without a cluster there are no status conditions to read: say in the log what is wrong.
	policy.OnBuild(func(_ *compile.Snapshot, changed compile.Changes) {
		for st := range changed.All() {
			for _, c := range st.Conditions {
				if c.Status != metav1.ConditionTrue {
					log.Info("Object not ready", "object", st.Key.String(), "condition", c.Type, "reason", c.Reason, "message", c.Message)
					break
				}
			}
		}
	})
	expiries := make(chan time.Time, 1)
	note := func(next time.Time) {
		select {
		case <-expiries:
		default:
		}
		expiries <- next
	}
	src := &FileSource[compile.Prepared]{Dir: dir, Debounce: debounce, Log: log,
		Convert: func(obj client.Object) (compile.Prepared, bool) {
			if dropUnlabelledSecret(obj, log) {
				return compile.Prepared{}, false
			}
			return policy.Prepare(obj)
		},
		Apply: func(objs []compile.Prepared) {
			policy.ReplacePrepared(objs)
			note(policy.Rebuild(true))
			fileLoads.WithLabelValues("ok").Inc()
		},
		Rejected: func(error) { fileLoads.WithLabelValues("error").Inc() },
	}
	go func() {
		var timer <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case next := <-expiries:
				timer = nil
				if !next.IsZero() {
					timer = time.After(time.Until(next) + time.Millisecond)
				}
			case <-timer:
				timer = nil
				if next := policy.Rebuild(true); !next.IsZero() {
					timer = time.After(time.Until(next) + time.Millisecond)
				}
			}
		}
	}()
	return src.Start(ctx)
}

// DropUnlabelledSecrets drops the Secrets a cluster's informer cache would not hold (those
// without the auth.portcullis.dev/credential: "true" label), so a directory behaves as it
// will once applied to a cluster.
func DropUnlabelledSecrets(objs []client.Object, log logr.Logger) []client.Object {
	out := make([]client.Object, 0, len(objs))
	for _, o := range objs {
		if !dropUnlabelledSecret(o, log) {
			out = append(out, o)
		}
	}
	return out
}

// dropUnlabelledSecret reports whether obj is a Secret DropUnlabelledSecrets drops, and
// logs it if so.
func dropUnlabelledSecret(obj client.Object, log logr.Logger) bool {
	s, ok := obj.(*corev1.Secret)
	if !ok || s.Labels[authv1alpha1.CredentialSecretLabel] == "true" {
		return false
	}
	log.Info("Ignoring a Secret without the label "+authv1alpha1.CredentialSecretLabel+`: "true", as a cluster would`, "secret", s.Namespace+"/"+s.Name)
	return true
}
