package sqlite_test

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/testenv"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/storetest"
)

var crashTrials = flag.Int("crash.trials", 20, "SIGKILL trials in TestCrashSafety (raise it for a soak)")

// TestCrashSafety kills an appending process with SIGKILL at random moments
// and checks, after each kill, that every event the process was told is
// stored is there, under the seq it was given, and that seqs are contiguous.
//
// SIGKILL loses the process, not the operating system's page cache; the
// power-loss half of the promise rests on synchronous=FULL (an fsync of the
// WAL before each commit returns).
func TestCrashSafety(t *testing.T) {
	testenv.Slow(t, "crash trials are slow")
	path := filepath.Join(t.TempDir(), "trail.db")
	for trial := range *crashTrials {
		acked := map[string]uint64{} // event id -> seq
		n := crashOnce(t, path, time.Duration(rand.IntN(300))*time.Millisecond, acked)
		t.Logf("trial %d: %d events acknowledged before SIGKILL", trial, n)
		checkAfterCrash(t, path, acked)
	}
}

// crashOnce runs the child until it has acknowledged its first append
// (however long a loaded machine takes to start it), then for about d
// more, kills it, and records what it acknowledged.
func crashOnce(t *testing.T, path string, d time.Duration, acked map[string]uint64) int {
	cmd := exec.Command(os.Args[0]) // TestMain runs the child

	cmd.Env = append(os.Environ(), "TRAIL_CRASH_CHILD="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	n := 0
	done, first := make(chan struct{}), make(chan struct{})
	var once sync.Once
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			id, seq, ok := strings.Cut(sc.Text(), " ")
			if !ok || id == "PASS" {
				continue
			}
			s, err := strconv.ParseUint(seq, 10, 64)
			if err != nil {
				continue
			}
			mu.Lock()
			acked[id] = s
			n++
			mu.Unlock()
			once.Do(func() { close(first) })
		}
	}()
	select {
	case <-first:
	case <-done:
		t.Fatal("the child exited before it acknowledged an append")
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatal("the child acknowledged no append in 2 minutes")
	}
	time.Sleep(d)
	cmd.Process.Kill() // SIGKILL
	<-done
	cmd.Wait()
	return n
}

func checkAfterCrash(t *testing.T, path string, acked map[string]uint64) {
	t.Helper()
	ctx := context.Background()
	db := open(t, path)
	defer db.Close()
	n, err := db.Count(ctx, trail.Query{Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	var want uint64 = 1
	if err := db.Scan(ctx, "acme", 1, 0, func(ev *trail.Event) error {
		if ev.Seq != want {
			return fmt.Errorf("seq %d follows seq %d: seqs must be contiguous", ev.Seq, want-1)
		}
		want++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want-1 != uint64(n) {
		t.Fatalf("scan saw %d events, Count says %d", want-1, n)
	}
	for id, seq := range acked {
		ev, err := db.Get(ctx, "acme", id)
		if err != nil {
			t.Fatalf("acknowledged event %s (seq %d) lost after SIGKILL: %v", id, seq, err)
		}
		if ev.Seq != seq {
			t.Fatalf("acknowledged event %s was seq %d, is now %d", id, seq, ev.Seq)
		}
	}
}

// TestMain runs the crash child when TRAIL_CRASH_CHILD names a database,
// and the tests otherwise.
func TestMain(m *testing.M) {
	if path := os.Getenv("TRAIL_CRASH_CHILD"); path != "" {
		crashChild(path)
		return
	}
	os.Exit(m.Run())
}

// crashChild is the process TestCrashSafety kills: four goroutines append
// batches of 1 to 20 events as fast as they can and print "id seq" for each
// event once Append has returned.
func crashChild(path string) {
	db, err := sqlite.Open(context.Background(), path, sqlite.Options{Validator: storetest.Validator(), Signer: storetest.Signer()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				batch := make([]*trail.Event, 1+rand.IntN(20))
				for j := range batch {
					batch[j] = storetest.Login(fmt.Sprintf("g%d-%d-%d", g, i, j))
				}
				res, err := db.Append(context.Background(), "acme", batch, trail.AppendOptions{})
				if err != nil {
					fmt.Fprintln(os.Stderr, "Append:", err)
					os.Exit(2)
				}
				mu.Lock()
				for _, ev := range res.Events {
					fmt.Fprintf(w, "%s %d\n", ev.ID, ev.Seq)
				}
				w.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}
