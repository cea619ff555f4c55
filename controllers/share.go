package controllers

import (
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
)

// sharedMetadata makes objects share equal label maps, equal Credential spec.metadata maps,
// equal namespace names and equal status conditions. A Go map costs over 300 bytes even
// with one entry, and 100,000 Credentials usually repeat a few label sets (team, tier,
// partner) thousands of times; their statuses, written by Portcullis, repeat one Ready
// condition with a few transition times (about 200 bytes each, decoded). Objects that share
// must be read-only, as objects loaded from files and objects in an informer cache are (the
// status writer changes a deep copy).
type sharedMetadata struct {
	// limit bounds how many distinct maps and names it remembers (0: no bound); past it, new
	// ones are kept as they are. An informer cache lives as long as the process, and a label
	// unique to each object would otherwise be remembered forever.
	limit int
	maps  map[string]map[string]string
	names map[string]string
	conds map[string][]metav1.Condition
	key   []byte
}

// share makes obj use the shared copies of its labels, spec.metadata and namespace.
func (s *sharedMetadata) share(obj client.Object) {
	if l := obj.GetLabels(); len(l) > 0 {
		obj.SetLabels(s.stringMap(l))
	}
	switch o := obj.(type) {
	case *authv1alpha1.Credential:
		if len(o.Spec.Metadata) > 0 {
			o.Spec.Metadata = s.stringMap(o.Spec.Metadata)
		}
		o.Status.Conditions = s.conditions(o.Status.Conditions)
	case *authv1alpha1.CustomAuthorizer:
		o.Status.Conditions = s.conditions(o.Status.Conditions)
	case *authv1alpha1.APIBinding:
		o.Status.Conditions = s.conditions(o.Status.Conditions)
	}
	if ns := obj.GetNamespace(); ns != "" {
		obj.SetNamespace(s.name(ns))
	}
}

// conditions returns the shared list equal to c (c itself when it is the first).
func (s *sharedMetadata) conditions(c []metav1.Condition) []metav1.Condition {
	if len(c) == 0 {
		return c
	}
	s.key = s.key[:0]
	for i := range c {
		s.keyString(c[i].Type)
		s.keyString(string(c[i].Status))
		s.keyString(c[i].Reason)
		s.keyString(c[i].Message)
		s.key = strconv.AppendInt(s.key, c[i].ObservedGeneration, 10)
		s.key = append(s.key, ':')
		// Equal instants in different locations (UTC, Local) print differently: not
		// shared, which is only a missed saving.
		s.key = c[i].LastTransitionTime.AppendFormat(s.key, time.RFC3339Nano)
		s.key = append(s.key, ';')
	}
	if shared, ok := s.conds[string(s.key)]; ok {
		return shared
	}
	if s.conds == nil {
		s.conds = map[string][]metav1.Condition{}
	}
	if s.limit == 0 || len(s.conds) < s.limit {
		s.conds[string(s.key)] = c
	}
	return c
}

// stringMap returns the shared map equal to m (m itself when it is the first).
func (s *sharedMetadata) stringMap(m map[string]string) map[string]string {
	s.key = s.key[:0]
	if len(m) == 1 { // the usual case: no keys to sort
		for k, v := range m {
			s.keyString(k)
			s.keyString(v)
		}
	} else {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			s.keyString(k)
			s.keyString(m[k])
		}
	}
	if shared, ok := s.maps[string(s.key)]; ok {
		return shared
	}
	if s.maps == nil {
		s.maps = map[string]map[string]string{}
	}
	if s.limit == 0 || len(s.maps) < s.limit {
		s.maps[string(s.key)] = m
	}
	return m
}

// keyString appends v to the key being built, length first, so that no two different
// sequences of strings make the same key.
func (s *sharedMetadata) keyString(v string) {
	s.key = strconv.AppendInt(s.key, int64(len(v)), 10)
	s.key = append(s.key, ':')
	s.key = append(s.key, v...)
}

// name returns the shared string equal to v.
func (s *sharedMetadata) name(v string) string {
	if shared, ok := s.names[v]; ok {
		return shared
	}
	if s.names == nil {
		s.names = map[string]string{}
	}
	if s.limit == 0 || len(s.names) < s.limit {
		s.names[v] = v
	}
	return v
}

// cacheShared is the sharedMetadata of the informer cache (see stripMetadata), whose
// informers transform objects on their own goroutines.
var cacheShared = struct {
	sync.Mutex
	s sharedMetadata
}{s: sharedMetadata{limit: 4096}}
