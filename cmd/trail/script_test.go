package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/trailaudit/trail/internal/pgtest"
)

// TestScripts runs the CLI scripts in testdata/script. Each file is a txtar
// archive: a script, then the files it uses. Script lines:
//
//	trail ARGS...      run trail; it must exit 0
//	! trail ARGS...    run trail; it must exit non-zero
//	exit N             the last run exited with code N
//	stdin FILE         the next run reads FILE as standard input
//	stdout RE          the last run's stdout matches the regular expression
//	! stdout RE        it does not match
//	stderr RE / ! stderr RE   the same for stderr
//	cmp stdout FILE    stdout equals FILE exactly
//	cp stdout FILE     write the last run's stdout to FILE
//
// $POSTGRES in a line becomes the URL of a fresh PostgreSQL schema on the
// test server (internal/pgtest), dropped when the script ends.
//
// Arguments split on spaces; single quotes group. Lines starting with # are
// comments. The scripts are the CLI's documentation by example.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/script/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			t.Parallel()
			runScript(t, file)
		})
	}
}

func runScript(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	script, files := parseTxtar(data)
	if strings.Contains(script, "$POSTGRES") {
		script = strings.ReplaceAll(script, "$POSTGRES", pgtest.SchemaURL(t))
	}
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The process's environment, but checkpoints are remembered in the
	// script's own directory.
	vars := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	vars["TRAIL_CHECKPOINTS"] = filepath.Join(dir, ".remembered")
	var stdout, stderr bytes.Buffer
	var stdin []byte
	code := -1
	for i, line := range strings.Split(script, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		where := file + ":" + strconv.Itoa(i+1)
		neg := false
		if rest, ok := strings.CutPrefix(line, "! "); ok {
			neg, line = true, rest
		}
		args := splitArgs(line)
		switch args[0] {
		case "trail":
			stdout.Reset()
			stderr.Reset()
			code = run(args[1:], &env{stdin: bytes.NewReader(stdin), stdout: &stdout, stderr: &stderr, dir: dir, vars: vars})
			stdin = nil
			if (code == 0) == neg {
				t.Fatalf("%s: %s exited %d\nstdout:\n%s\nstderr:\n%s", where, line, code, stdout.String(), stderr.String())
			}
		case "exit":
			if want, _ := strconv.Atoi(args[1]); code != want {
				t.Fatalf("%s: exit code %d, want %d", where, code, want)
			}
		case "stdin":
			b, err := os.ReadFile(filepath.Join(dir, args[1]))
			if err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			stdin = b
		case "stdout", "stderr":
			out := stdout.String()
			if args[0] == "stderr" {
				out = stderr.String()
			}
			re, err := regexp.Compile("(?m)" + args[1])
			if err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			if re.MatchString(out) == neg {
				t.Fatalf("%s: %s %s: match is %v\n%s:\n%s", where, args[0], args[1], !neg, args[0], out)
			}
		case "cp":
			// cp stdout FILE: keep the last run's stdout in a file.
			src := stdout.String()
			if args[1] == "stderr" {
				src = stderr.String()
			}
			if err := os.WriteFile(filepath.Join(dir, args[2]), []byte(src), 0o644); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
		case "cmp":
			want, err := os.ReadFile(filepath.Join(dir, args[2]))
			if err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			got := stdout.String()
			if args[1] == "stderr" {
				got = stderr.String()
			}
			if got != string(want) {
				t.Fatalf("%s: %s differs from %s\ngot:\n%s\nwant:\n%s", where, args[1], args[2], got, want)
			}
		default:
			t.Fatalf("%s: unknown command %q", where, args[0])
		}
	}
}

// parseTxtar splits a txtar archive into its comment (the script) and files.
func parseTxtar(data []byte) (string, map[string][]byte) {
	files := map[string][]byte{}
	marker := regexp.MustCompile(`(?m)^-- (.+) --$`)
	locs := marker.FindAllSubmatchIndex(data, -1)
	if len(locs) == 0 {
		return string(data), files
	}
	script := string(data[:locs[0][0]])
	for i, loc := range locs {
		name := string(data[loc[2]:loc[3]])
		start := loc[1] + 1
		end := len(data)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		if start > end {
			start = end
		}
		files[name] = data[start:end]
	}
	return script, files
}

// splitArgs splits a script line on spaces, keeping single-quoted runs whole.
func splitArgs(line string) []string {
	var args []string
	var cur strings.Builder
	inQuote, have := false, false
	for _, r := range line {
		switch {
		case r == '\'':
			inQuote, have = !inQuote, true
		case r == ' ' && !inQuote:
			if have {
				args = append(args, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		args = append(args, cur.String())
	}
	return args
}
