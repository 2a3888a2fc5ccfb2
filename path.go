package trail

import (
	"strconv"
	"strings"
)

// PathKey returns the JSON path of member key inside parent, the form used in
// field errors, violations and redaction records: "context.attempts", or
// `context["odd key"]` when key is not a plain identifier.
func PathKey(parent, key string) string {
	if plainKey(key) {
		if parent == "" {
			return key
		}
		return parent + "." + key
	}
	return parent + "[" + strconv.Quote(key) + "]"
}

// PathIndex returns the JSON path of element i of the list at parent:
// "targets[2]".
func PathIndex(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}

func plainKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c == '_' || c == '-' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9') {
			continue
		}
		return false
	}
	return !strings.HasPrefix(k, "-")
}
