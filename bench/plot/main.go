// Command plot draws a small SVG line chart from "x y" pairs read from
// standard input, one pair a line, x on a logarithmic axis: the scale
// curves of docs/benchmarks.md (events in the database against a rate).
//
//	printf '10000 3937\n100000 2821\n' | go run ./bench/plot -title 'append, events/s' > docs/scale-append.svg
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

func main() {
	title := flag.String("title", "", "the chart's title")
	flag.Parse()
	pts, err := parse(os.Stdin)
	if err == nil {
		err = draw(os.Stdout, *title, pts)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "plot:", err)
		os.Exit(1)
	}
}

type point struct{ x, y float64 }

// parse reads "x y" lines (blank lines and lines starting with # skipped);
// x must be positive and ascending.
func parse(r io.Reader) ([]point, error) {
	var pts []point
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		f := strings.Fields(t)
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d: want \"x y\", got %q", line, t)
		}
		x, err1 := strconv.ParseFloat(f[0], 64)
		y, err2 := strconv.ParseFloat(f[1], 64)
		if err1 != nil || err2 != nil || x <= 0 {
			return nil, fmt.Errorf("line %d: want a positive x and a number y, got %q", line, t)
		}
		if len(pts) > 0 && x <= pts[len(pts)-1].x {
			return nil, fmt.Errorf("line %d: x %v after %v, want ascending", line, x, pts[len(pts)-1].x)
		}
		pts = append(pts, point{x, y})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(pts) < 2 {
		return nil, fmt.Errorf("want at least two points, got %d", len(pts))
	}
	return pts, nil
}

// draw writes the chart: 480×240, y from 0 to the largest y.
func draw(w io.Writer, title string, pts []point) error {
	const W, H, L, R, T, B = 480.0, 240.0, 60.0, 20.0, 30.0, 40.0
	lx0, lx1 := math.Log10(pts[0].x), math.Log10(pts[len(pts)-1].x)
	ymax := 0.0
	for _, p := range pts {
		ymax = math.Max(ymax, p.y)
	}
	if ymax <= 0 {
		ymax = 1
	}
	px := func(x float64) float64 { return L + (math.Log10(x)-lx0)/(lx1-lx0)*(W-L-R) }
	py := func(y float64) float64 { return H - B - y/ymax*(H-T-B) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" font-family="sans-serif" font-size="11">`+"\n", W, H)
	fmt.Fprintf(&b, `<text x="%g" y="18" font-size="13">%s</text>`+"\n", L, escape(title))
	fmt.Fprintf(&b, `<path d="M%g %g V%g H%g" fill="none" stroke="#888"/>`+"\n", L, T, H-B, W-R)
	fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="end">%s</text><text x="%g" y="%g" text-anchor="end">0</text>`+"\n", L-4, T+4, strconv.FormatFloat(ymax, 'f', -1, 64), L-4, H-B)
	var path strings.Builder
	for i, p := range pts {
		cmd := "L"
		if i == 0 {
			cmd = "M"
		}
		fmt.Fprintf(&path, "%s%.1f %.1f ", cmd, px(p.x), py(p.y))
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3"/><text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", px(p.x), py(p.y), px(p.x), py(p.y)-7, strconv.FormatFloat(p.y, 'f', -1, 64))
		fmt.Fprintf(&b, `<text x="%.1f" y="%g" text-anchor="middle">%s</text>`+"\n", px(p.x), H-B+16, human(p.x))
	}
	fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="#1565c0" stroke-width="2"/>`+"\n", strings.TrimSpace(path.String()))
	fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="middle">events in the database</text>`+"\n", (L+W-R)/2, H-6)
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// human writes 10000 as 10k and 1000000 as 1M.
func human(x float64) string {
	switch {
	case x >= 1e6:
		return strconv.FormatFloat(x/1e6, 'f', -1, 64) + "M"
	case x >= 1e3:
		return strconv.FormatFloat(x/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(x, 'f', -1, 64)
}

func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
