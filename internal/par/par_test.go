package par

import (
	"fmt"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
)

// wide runs a test with more cores than this machine may have, so batches
// are spread over several chunks (and the race detector sees them).
func wide(t *testing.T) {
	old := runtime.GOMAXPROCS(4)
	t.Cleanup(func() { runtime.GOMAXPROCS(old) })
}

func TestSpread(t *testing.T) {
	wide(t)
	tests := []struct {
		n      int
		fail   []int // indexes whose work fails
		want   int   // the index the error names, -1 for none
		chunks int   // the chunks it runs in
	}{
		{n: 0, want: -1, chunks: 1},
		{n: 1, want: -1, chunks: 1},
		{n: minChunk*2 - 1, want: -1, chunks: 1},
		{n: minChunk * 2, want: -1, chunks: 2},
		{n: minChunk * 5, want: -1, chunks: 5},
		{n: 1000, want: -1, chunks: 16},
		{n: 1000, fail: []int{999}, want: 999, chunks: 16},
		{n: 1000, fail: []int{900, 10, 500}, want: 10, chunks: 16},
		{n: 1000, fail: []int{62, 61}, want: 61, chunks: 16}, // 61 ends chunk 0, 62 begins chunk 1
		{n: 5, fail: []int{3, 1}, want: 1, chunks: 1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d/%v", tt.n, tt.fail), func(t *testing.T) {
			seen := make([]atomic.Int32, tt.n)
			var chunks atomic.Int32
			err := Spread(tt.n, func(lo, hi int) error {
				chunks.Add(1)
				for i := lo; i < hi; i++ {
					seen[i].Add(1)
					if slices.Contains(tt.fail, i) {
						return fmt.Errorf("item %d", i)
					}
				}
				return nil
			})
			want := error(nil)
			if tt.want >= 0 {
				want = fmt.Errorf("item %d", tt.want)
			}
			if fmt.Sprint(err) != fmt.Sprint(want) {
				t.Errorf("err = %v, want %v", err, want)
			}
			if int(chunks.Load()) != tt.chunks {
				t.Errorf("%d chunks, want %d", chunks.Load(), tt.chunks)
			}
			for i := range seen {
				if c := seen[i].Load(); c > 1 || (c == 0 && len(tt.fail) == 0) {
					t.Fatalf("item %d done %d times", i, c)
				}
			}
		})
	}
}

// A batch spread over the cores is refused exactly as PrepareBatch refuses
// it in one call: the same error, the same fields at the same indexes.
