package controllers

// Hand-written scans that give the verdicts of apimachinery's name and label validators
// (k8s.io/apimachinery/pkg/util/validation), which run regular expressions: checkMetadata
// runs for every object of a policy directory, and asks apimachinery only for the messages
// of what these reject. FuzzNameChecks compares the two.

// validDNS1123Label reports whether s is an RFC 1123 label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at
// most 63 characters (validation.IsDNS1123Label).
func validDNS1123Label(s string) bool {
	return len(s) <= 63 && dnsLabel(s)
}

// validDNS1123Subdomain reports whether s is RFC 1123 labels joined by dots, at most 253
// characters (validation.IsDNS1123Subdomain; a label of it may be longer than 63).
func validDNS1123Subdomain(s string) bool {
	if len(s) > 253 {
		return false
	}
	for start := 0; ; {
		end := start
		for end < len(s) && s[end] != '.' {
			end++
		}
		if !dnsLabel(s[start:end]) {
			return false
		}
		if end == len(s) {
			return true
		}
		start = end + 1
	}
}

// dnsLabel reports whether s matches [a-z0-9]([-a-z0-9]*[a-z0-9])?, of any length.
func dnsLabel(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' && i > 0 && i < len(s)-1) {
			return false
		}
	}
	return true
}

// validLabelKey reports whether s is a label key: a name of at most 63 characters matching
// ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9], with an optional DNS subdomain prefix and '/'
// (validation.IsQualifiedName).
func validLabelKey(s string) bool {
	name := s
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			if !validDNS1123Subdomain(s[:i]) {
				return false
			}
			name = s[i+1:]
			break
		}
	}
	return name != "" && len(name) <= 63 && labelWord(name)
}

// validLabelValue reports whether s is a label value: empty, or at most 63 characters
// matching ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9] (validation.IsValidLabelValue).
func validLabelValue(s string) bool {
	return s == "" || len(s) <= 63 && labelWord(s)
}

// labelWord reports whether the non-empty s matches ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9].
func labelWord(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && !((c == '-' || c == '_' || c == '.') && i > 0 && i < len(s)-1) {
			return false
		}
	}
	return true
}
