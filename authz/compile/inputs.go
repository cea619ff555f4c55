package compile

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
)

// Kind is the kind of an input object.
type Kind uint8

// Input kinds.
const (
	KindCredential Kind = iota + 1
	KindCustomAuthorizer
	KindAPIBinding
	KindSecret
)

func (k Kind) String() string {
	switch k {
	case KindCredential:
		return "Credential"
	case KindCustomAuthorizer:
		return "CustomAuthorizer"
	case KindAPIBinding:
		return "APIBinding"
	case KindSecret:
		return "Secret"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// ObjectKey names one input object.
type ObjectKey struct {
	Kind Kind
	types.NamespacedName
}

func (k ObjectKey) String() string { return k.Kind.String() + " " + k.NamespacedName.String() }

// Inputs is the set of objects a snapshot is built from: the three Portcullis kinds and the
// labelled Secrets. It is owned by one source (informers or a directory), which calls Set and
// Delete as objects change and hands it to Build; it records which objects changed since the
// last build so that Build redoes only their part. Inputs is not safe for concurrent use: the
// owner serialises Set, Delete and Build.
type Inputs struct {
	// Now is the instant the build evaluates expiry against.
	Now time.Time

	credentials map[types.NamespacedName]*authv1alpha1.Credential
	authorizers map[types.NamespacedName]*authv1alpha1.CustomAuthorizer
	bindings    map[types.NamespacedName]*authv1alpha1.APIBinding
	secrets     map[types.NamespacedName]*secretData

	credsByNS    map[string]map[string]*authv1alpha1.Credential
	bindingsByNS map[string]map[string]*authv1alpha1.APIBinding

	changed map[ObjectKey]struct{}
	// Until the first build takes the changes, every object is new to it and it builds
	// everything: changes are only counted (in unbuilt), not recorded one by one.
	fresh   bool
	unbuilt int
}

// NewInputs returns an empty set.
func NewInputs() *Inputs {
	return &Inputs{
		credentials:  map[types.NamespacedName]*authv1alpha1.Credential{},
		authorizers:  map[types.NamespacedName]*authv1alpha1.CustomAuthorizer{},
		bindings:     map[types.NamespacedName]*authv1alpha1.APIBinding{},
		secrets:      map[types.NamespacedName]*secretData{},
		credsByNS:    map[string]map[string]*authv1alpha1.Credential{},
		bindingsByNS: map[string]map[string]*authv1alpha1.APIBinding{},
		changed:      map[ObjectKey]struct{}{},
		fresh:        true,
	}
}

// KeyOf returns the key of a supported object; ok is false for any other type.
func KeyOf(obj client.Object) (key ObjectKey, ok bool) {
	nn := types.NamespacedName{Namespace: obj.GetNamespace(), Name: obj.GetName()}
	switch obj.(type) {
	case *authv1alpha1.Credential:
		return ObjectKey{KindCredential, nn}, true
	case *authv1alpha1.CustomAuthorizer:
		return ObjectKey{KindCustomAuthorizer, nn}, true
	case *authv1alpha1.APIBinding:
		return ObjectKey{KindAPIBinding, nn}, true
	case *corev1.Secret:
		return ObjectKey{KindSecret, nn}, true
	}
	return ObjectKey{}, false
}

// Set adds or replaces an object. The object is kept, not copied: the caller must not change
// it afterwards (objects from an informer cache are never changed); of a Secret only the
// name, UID, resourceVersion and data are kept, sharing the data's byte slices. A
// replacement with the same UID and resourceVersion is ignored. It reports whether the set
// changed.
func (in *Inputs) Set(obj client.Object) bool {
	key, ok := KeyOf(obj)
	if !ok {
		return false
	}
	if uid, rv, ok := in.version(key); ok && uid == obj.GetUID() &&
		rv == obj.GetResourceVersion() && rv != "" {
		return false
	}
	nn := key.NamespacedName
	switch o := obj.(type) {
	case *authv1alpha1.Credential:
		in.credentials[nn] = o
		nsPut(in.credsByNS, nn, o)
	case *authv1alpha1.CustomAuthorizer:
		in.authorizers[nn] = o
	case *authv1alpha1.APIBinding:
		in.bindings[nn] = o
		nsPut(in.bindingsByNS, nn, o)
	case *corev1.Secret:
		in.secrets[nn] = newSecretData(o)
	}
	in.Touch(key)
	return true
}

// Delete removes an object; it reports whether the set changed.
func (in *Inputs) Delete(key ObjectKey) bool {
	if _, _, ok := in.version(key); !ok {
		return false
	}
	nn := key.NamespacedName
	switch key.Kind {
	case KindCredential:
		delete(in.credentials, nn)
		nsDelete(in.credsByNS, nn)
	case KindCustomAuthorizer:
		delete(in.authorizers, nn)
	case KindAPIBinding:
		delete(in.bindings, nn)
		nsDelete(in.bindingsByNS, nn)
	case KindSecret:
		delete(in.secrets, nn)
	}
	in.Touch(key)
	return true
}

// Reserve makes room for counts[k] objects of each kind k the set has none of yet: a first
// load of 100,000 objects then fills its maps without growing them step by step.
func (in *Inputs) Reserve(counts map[Kind]int) {
	for k, n := range counts {
		switch {
		case k == KindCredential && len(in.credentials) == 0:
			in.credentials = make(map[types.NamespacedName]*authv1alpha1.Credential, n)
		case k == KindCustomAuthorizer && len(in.authorizers) == 0:
			in.authorizers = make(map[types.NamespacedName]*authv1alpha1.CustomAuthorizer, n)
		case k == KindAPIBinding && len(in.bindings) == 0:
			in.bindings = make(map[types.NamespacedName]*authv1alpha1.APIBinding, n)
		case k == KindSecret && len(in.secrets) == 0:
			in.secrets = make(map[types.NamespacedName]*secretData, n)
		}
	}
}

// Touch marks an object as changed without changing it, so the next build evaluates it again
// (for instance when a Credential's expiresAt has passed).
func (in *Inputs) Touch(key ObjectKey) {
	if in.fresh {
		in.unbuilt++
		return
	}
	in.changed[key] = struct{}{}
}

// Changed counts the objects changed since the last build (before the first build, the
// changes: an object set twice counts twice).
func (in *Inputs) Changed() int { return len(in.changed) + in.unbuilt }

// Len counts the objects in the set.
func (in *Inputs) Len() int {
	return len(in.credentials) + len(in.authorizers) + len(in.bindings) + len(in.secrets)
}

// Keys returns the key of every object in the set (in no particular order).
func (in *Inputs) Keys() []ObjectKey {
	out := make([]ObjectKey, 0, in.Len())
	for k := range in.credentials {
		out = append(out, ObjectKey{KindCredential, k})
	}
	for k := range in.authorizers {
		out = append(out, ObjectKey{KindCustomAuthorizer, k})
	}
	for k := range in.bindings {
		out = append(out, ObjectKey{KindAPIBinding, k})
	}
	for k := range in.secrets {
		out = append(out, ObjectKey{KindSecret, k})
	}
	return out
}

// version returns the UID and resourceVersion of the object under key; ok is false when
// there is none.
func (in *Inputs) version(key ObjectKey) (uid types.UID, rv string, ok bool) {
	var obj client.Object
	nn := key.NamespacedName
	switch key.Kind {
	case KindCredential:
		if o, found := in.credentials[nn]; found {
			obj = o
		}
	case KindCustomAuthorizer:
		if o, found := in.authorizers[nn]; found {
			obj = o
		}
	case KindAPIBinding:
		if o, found := in.bindings[nn]; found {
			obj = o
		}
	case KindSecret:
		if s, found := in.secrets[nn]; found {
			return s.uid, s.resourceVersion, true
		}
	}
	if obj == nil {
		return "", "", false
	}
	return obj.GetUID(), obj.GetResourceVersion(), true
}

// secretData is what the compiler reads of a Secret. A Secret is kept this way rather than
// whole because there are as many Secrets as Credentials and a Go map per Secret (its data)
// costs several hundred bytes even for three keys.
type secretData struct {
	uid             types.UID
	resourceVersion string
	items           []secretItem // sorted by key
}

type secretItem struct {
	key   string
	value []byte
}

func newSecretData(s *corev1.Secret) *secretData {
	d := &secretData{uid: s.UID, resourceVersion: s.ResourceVersion, items: make([]secretItem, 0, len(s.Data))}
	for k, v := range s.Data {
		d.items = append(d.items, secretItem{k, v})
	}
	slices.SortFunc(d.items, func(a, b secretItem) int { return strings.Compare(a.key, b.key) })
	return d
}

// get returns the value under key k.
func (d *secretData) get(k string) ([]byte, bool) {
	i, found := slices.BinarySearchFunc(d.items, k, func(it secretItem, k string) int { return strings.Compare(it.key, k) })
	if !found {
		return nil, false
	}
	return d.items[i].value, true
}

// takeChanges returns the objects changed since the last build and starts recording anew;
// all is true when there was no build yet, so every object is new.
func (in *Inputs) takeChanges() (changed map[ObjectKey]struct{}, all bool) {
	c, all := in.changed, in.fresh
	in.changed, in.fresh, in.unbuilt = map[ObjectKey]struct{}{}, false, 0
	return c, all
}

func nsPut[T any](idx map[string]map[string]T, nn types.NamespacedName, v T) {
	m := idx[nn.Namespace]
	if m == nil {
		m = map[string]T{}
		idx[nn.Namespace] = m
	}
	m[nn.Name] = v
}

func nsDelete[T any](idx map[string]map[string]T, nn types.NamespacedName) {
	if m := idx[nn.Namespace]; m != nil {
		delete(m, nn.Name)
		if len(m) == 0 {
			delete(idx, nn.Namespace)
		}
	}
}
