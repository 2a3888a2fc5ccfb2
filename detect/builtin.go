package detect

import (
	"embed"
	"io/fs"
	"time"
)

//go:embed rules/*.yml
var builtinFiles embed.FS

// BuiltinSet is the name of the built-in rule set: its cursor is
// "detect.builtin".
const BuiltinSet = "builtin"

// MFAAfterNewAddress is the id of the built-in Go rule that finds MFA
// disabled within an hour of a login from an address the account had not
// used in the 30 days before.
const MFAAfterNewAddress = "ca3ad461-680d-4821-b824-a658181e3371"

// BuiltinFiles returns the built-in rules as Sigma files, by name: what
// Builtin parses (all but the Go rules).
func BuiltinFiles() map[string][]byte {
	out := map[string][]byte{}
	_ = fs.WalkDir(builtinFiles, "rules", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out[d.Name()], err = builtinFiles.ReadFile(path)
		}
		return err
	})
	return out
}

// Builtin returns the built-in rule set: the Sigma rules of detect/rules
// and the Go rules (MFAAfterNewAddress).
func Builtin() *Set {
	var rules []*Rule
	files, err := fs.Glob(builtinFiles, "rules/*.yml")
	if err != nil {
		panic(err)
	}
	for _, name := range files {
		data, err := builtinFiles.ReadFile(name)
		if err != nil {
			panic(err)
		}
		rs, err := ParseRules(data)
		if err != nil {
			// The embedded files are checked by this package's tests.
			panic("detect: " + name + ": " + err.Error())
		}
		rules = append(rules, rs...)
	}
	rules = append(rules, &Rule{
		ID: MFAAfterNewAddress, Name: "mfa_disabled_after_new_address", kind: KindGo, Level: LevelHigh,
		Title:       "MFA disabled soon after a login from a new address",
		Description: "An account's MFA was disabled within an hour of a successful login from an address it had not logged in from in the 30 days before.",
		Tags:        []string{"attack.persistence", "attack.t1556.006"},
		goRule:      mfaAfterNewAddress{within: time.Hour, lookback: 30 * 24 * time.Hour, maxHistory: 10000},
	})
	s, err := NewSet(BuiltinSet, rules...)
	if err != nil {
		panic("detect: the built-in rules: " + err.Error())
	}
	return s
}
