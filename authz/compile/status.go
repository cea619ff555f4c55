package compile

import (
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ObjectStatus is what the build observed about one object: the status a writer should put
// on it. Conditions carry no LastTransitionTime; the writer sets it when a status changes.
type ObjectStatus struct {
	Key                ObjectKey
	UID                types.UID
	ObservedGeneration int64
	Conditions         []metav1.Condition
	// AppKey and BoundBindings are set for Credentials.
	AppKey        string
	BoundBindings int32
}

// Equal reports whether two statuses say the same.
func (s *ObjectStatus) Equal(o *ObjectStatus) bool {
	if s.Key != o.Key || s.UID != o.UID || s.ObservedGeneration != o.ObservedGeneration ||
		s.AppKey != o.AppKey || s.BoundBindings != o.BoundBindings || len(s.Conditions) != len(o.Conditions) {
		return false
	}
	for i := range s.Conditions {
		a, b := s.Conditions[i], o.Conditions[i]
		if a.Type != b.Type || a.Status != b.Status || a.Reason != b.Reason || a.Message != b.Message ||
			a.ObservedGeneration != b.ObservedGeneration {
			return false
		}
	}
	return true
}

func condition(typ string, ok bool, reason, msg string, gen int64) metav1.Condition {
	st := metav1.ConditionTrue
	if !ok {
		st = metav1.ConditionFalse
	}
	return metav1.Condition{Type: typ, Status: st, Reason: reason, Message: msg, ObservedGeneration: gen}
}

func sortStatuses(s []ObjectStatus) {
	slices.SortFunc(s, func(a, b ObjectStatus) int {
		if a.Key.Kind != b.Key.Kind {
			return int(a.Key.Kind) - int(b.Key.Kind)
		}
		if c := strings.Compare(a.Key.Namespace, b.Key.Namespace); c != 0 {
			return c
		}
		return strings.Compare(a.Key.Name, b.Key.Name)
	})
}

// Statuses returns the status of every object the snapshot was built from, sorted by kind,
// namespace and name; a newly elected status writer starts from it.
func (s *Snapshot) Statuses() []ObjectStatus {
	var out []ObjectStatus
	if s == nil || s.st == nil {
		return out
	}
	s.st.creds.Range(func(k types.NamespacedName, e *credEntry) bool { out = append(out, e.statusOf(k)); return true })
	s.st.authz.Range(func(k types.NamespacedName, e *authzEntry) bool { out = append(out, e.statusOf(k)); return true })
	s.st.binds.Range(func(k types.NamespacedName, e *bindEntry) bool { out = append(out, e.statusOf(k)); return true })
	sortStatuses(out)
	return out
}

// ReadyCount is how many objects of one kind are ready and not.
type ReadyCount struct{ Ready, NotReady int }

// ReadyCounts counts the objects by kind and Ready condition (for metrics; it walks every
// object, without sorting).
func (s *Snapshot) ReadyCounts() map[Kind]ReadyCount {
	out := map[Kind]ReadyCount{KindCredential: {}, KindCustomAuthorizer: {}, KindAPIBinding: {}}
	if s == nil || s.st == nil {
		return out
	}
	count := func(k Kind, conds []metav1.Condition) {
		c := out[k]
		ready := false
		for _, cond := range conds {
			if cond.Type == "Ready" {
				ready = cond.Status == "True"
			}
		}
		if ready {
			c.Ready++
		} else {
			c.NotReady++
		}
		out[k] = c
	}
	s.st.creds.Range(func(_ types.NamespacedName, e *credEntry) bool { count(KindCredential, e.conds()); return true })
	s.st.authz.Range(func(_ types.NamespacedName, e *authzEntry) bool { count(KindCustomAuthorizer, e.conds); return true })
	s.st.binds.Range(func(_ types.NamespacedName, e *bindEntry) bool { count(KindAPIBinding, e.conds); return true })
	return out
}
