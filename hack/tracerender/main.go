/*
Copyright 2026.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Command tracerender draws one trace as a waterfall PNG, like Jaeger's timeline view, for
// docs/observability.md. Its input is the JSON the e2e tracing test keeps in
// .demo/last-trace.json, so the picture in the docs comes from a real Download on the demo
// cluster without running Jaeger:
//
//	go run ./hack/tracerender -in .demo/last-trace.json -out docs/images/trace.png
package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// span mirrors the fields of otlpreceiver.Span that the waterfall needs. Importing that type
// would compile gRPC and the OTLP protobufs into a tool that only reads JSON; the tests decode
// what json.MarshalIndent([]otlpreceiver.Span) writes, so a renamed field fails them.
type span struct {
	TraceID, SpanID, ParentSpanID string
	Name, Service                 string
	Error                         bool
	Start, End                    time.Time
}

// row is a span at its place in the waterfall.
type row struct {
	span
	depth int
}

func main() {
	in := flag.String("in", ".demo/last-trace.json", "spans as JSON, as the e2e tracing test writes them")
	out := flag.String("out", "docs/images/trace.png", "PNG to write")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "tracerender:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	raw, err := os.ReadFile(in)
	if err != nil {
		return fmt.Errorf("reading the trace: %w", err)
	}
	spans, err := readSpans(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("reading %s: %w", in, err)
	}
	var png bytes.Buffer
	if err := render(order(spans), &png); err != nil {
		return fmt.Errorf("drawing %s: %w", in, err)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("creating the output directory: %w", err)
	}
	if err := os.WriteFile(out, png.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing the PNG: %w", err)
	}
	return nil
}

// errNoSpans is returned for an input without spans, which would otherwise make an empty image.
var errNoSpans = errors.New("no spans in the input")

// readSpans decodes the spans of one trace: a timeline mixing unrelated requests would mislead.
func readSpans(r io.Reader) ([]span, error) {
	var spans []span
	switch err := json.NewDecoder(r).Decode(&spans); {
	case errors.Is(err, io.EOF), err == nil && len(spans) == 0:
		return nil, errNoSpans
	case err != nil:
		return nil, fmt.Errorf("decoding spans: %w", err)
	}
	for _, s := range spans {
		if s.TraceID != spans[0].TraceID {
			return nil, fmt.Errorf("spans of traces %s and %s in the input, expected one trace", spans[0].TraceID, s.TraceID)
		}
	}
	return spans, nil
}

// order lays the spans out depth first, children by start time. A span whose parent is not in
// the input is a root: the facade's initiate span hangs off the client's span, which nobody
// exports, and a lost export batch must not hide the spans below it.
func order(spans []span) []row {
	byStart := func(a, b span) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.Name, b.Name), cmp.Compare(a.SpanID, b.SpanID))
	}
	sorted := slices.SortedStableFunc(slices.Values(spans), byStart)
	present := map[string]bool{}
	for _, s := range sorted {
		present[s.SpanID] = true
	}
	children := map[string][]span{} // roots under ""
	for _, s := range sorted {
		parent := s.ParentSpanID
		if !present[parent] {
			parent = ""
		}
		children[parent] = append(children[parent], s)
	}
	rows := make([]row, 0, len(spans))
	visited := map[string]bool{}
	var walk func(s span, depth int)
	walk = func(s span, depth int) {
		if visited[s.SpanID] {
			return
		}
		visited[s.SpanID] = true
		rows = append(rows, row{span: s, depth: depth})
		for _, c := range children[s.SpanID] {
			walk(c, depth+1)
		}
	}
	// Then spans in a parent cycle, reachable from no root: drawing them as roots beats dropping them.
	for _, s := range append(children[""], sorted...) {
		walk(s, 0)
	}
	return rows
}

// formatDuration keeps three significant figures or so, enough to compare spans by eye.
func formatDuration(d time.Duration) string {
	switch ms := float64(d) / float64(time.Millisecond); {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case ms >= 100:
		return fmt.Sprintf("%.0f ms", ms)
	case ms >= 10:
		return fmt.Sprintf("%.1f ms", ms)
	default:
		return fmt.Sprintf("%.2f ms", ms)
	}
}

const (
	// Lengths are in points.
	rowHeight   vg.Length = 16
	indent      vg.Length = 12
	barsWidth             = 16 * vg.Centimeter
	legendSpace vg.Length = 22
	// minBar keeps sub-millisecond spans visible on a timeline of seconds.
	minBar vg.Length = 2
	// servicePrefix is shared by the operator's service names (internal/tracing); the legend has
	// them in full, the rows only the part that tells them apart.
	servicePrefix = "download-operator-"
	dpi           = 144
)

// serviceColors tell the three components apart, by short name; another service is drawn grey.
var serviceColors = map[string]color.RGBA{
	"facade":     {R: 0x4c, G: 0x78, B: 0xa8, A: 0xff},
	"controller": {R: 0xf5, G: 0x85, B: 0x18, A: 0xff},
	"worker":     {R: 0x54, G: 0xa2, B: 0x4b, A: 0xff},
}

var (
	otherColor = color.RGBA{R: 0x9d, G: 0x9d, B: 0x9d, A: 0xff}
	errorColor = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
	greyText   = color.Gray{Y: 0x60}
)

func colorOf(service string) color.RGBA {
	if c, ok := serviceColors[short(service)]; ok {
		return c
	}
	return otherColor
}

// waterfall is a plot.Plotter drawing one bar per row, and the row labels to the left of the data
// area, where render leaves them room: the Y axis cannot indent its tick labels.
type waterfall struct {
	rows       []row
	t0         time.Time
	unit       time.Duration
	labelWidth vg.Length // left of the data area
	durWidth   vg.Length // right of it
	style      text.Style
}

func (w waterfall) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	step := trY(1) - trY(0)
	half := step * 0.35
	for i, r := range w.rows {
		y := trY(float64(len(w.rows) - 1 - i))
		if i%2 == 0 { // zebra stripes lead the eye from a label to its bar
			c.FillPolygon(color.NRGBA{A: 12}, rect(c.Min.X-w.labelWidth, y-step/2, c.Max.X+w.durWidth, y+step/2))
		}
		x0 := trX(float64(r.Start.Sub(w.t0)) / float64(w.unit))
		x1 := max(trX(float64(r.End.Sub(w.t0))/float64(w.unit)), x0+minBar)
		c.FillPolygon(colorOf(r.Service), rect(x0, y-half, x1, y+half))
		grey := w.style
		grey.Color = greyText
		dur := grey
		if r.Error {
			c.StrokeLines(draw.LineStyle{Color: errorColor, Width: vg.Points(1.5)}, rect(x0, y-half, x1, y+half))
			dur.Color = errorColor
		}
		c.FillText(dur, vg.Point{X: x1 + 4, Y: y}, durationLabel(r))
		at := vg.Point{X: c.Min.X - w.labelWidth + 6 + indent*vg.Length(r.depth), Y: y}
		c.FillText(w.style, at, r.Name)
		c.FillText(grey, vg.Point{X: at.X + w.style.Width(r.Name+" "), Y: y}, "["+short(r.Service)+"]")
	}
}

func short(service string) string { return strings.TrimPrefix(service, servicePrefix) }

func durationLabel(r row) string {
	if r.Error {
		return formatDuration(r.End.Sub(r.Start)) + " (error)"
	}
	return formatDuration(r.End.Sub(r.Start))
}

func rect(x0, y0, x1, y1 vg.Length) []vg.Point {
	return []vg.Point{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}, {X: x0, Y: y0}}
}

// render writes rows as a waterfall PNG whose height grows with the number of rows.
func render(rows []row, out io.Writer) error {
	if len(rows) == 0 {
		return errNoSpans
	}
	// The earliest start rather than the root's: clocks of different Pods may disagree a little.
	t0 := slices.MinFunc(rows, func(a, b row) int { return a.Start.Compare(b.Start) }).Start
	total := slices.MaxFunc(rows, func(a, b row) int { return a.End.Compare(b.End) }).End.Sub(t0)
	unit, unitName := time.Millisecond, "ms"
	if total >= 2*time.Second {
		unit, unitName = time.Second, "s"
	}

	p := plot.New()
	sans := font.Font{Typeface: "Liberation", Variant: "Sans"}
	p.Title.Text = fmt.Sprintf("Trace %s: %d spans, %s", rows[0].TraceID, len(rows), formatDuration(total))
	p.Title.TextStyle.Font = font.From(sans, 12)
	p.Title.Padding = 8
	p.X.Label.Text = unitName + " since the trace started"
	p.X.Label.TextStyle.Font = font.From(sans, 10)
	p.X.Tick.Label.Font = font.From(sans, 9)
	p.X.Min, p.X.Max = 0, max(float64(total)/float64(unit), 1e-9)
	p.HideY()
	p.Y.Min, p.Y.Max = -0.5, float64(len(rows))-0.5
	grid := plotter.NewGrid()
	grid.Horizontal.Color = nil
	p.Add(grid)

	style := p.X.Tick.Label
	style.Font = font.From(sans, 9)
	style.XAlign, style.YAlign = text.XLeft, text.YCenter
	labelWidth, durWidth := vg.Length(0), vg.Length(0)
	for _, r := range rows {
		l := style.Width(r.Name+" ["+short(r.Service)+"]") + indent*vg.Length(r.depth)
		labelWidth = max(labelWidth, l+12)
		durWidth = max(durWidth, style.Width(durationLabel(r))+8)
	}
	p.Add(waterfall{rows: rows, t0: t0, unit: unit, labelWidth: labelWidth, durWidth: durWidth, style: style})

	// Title, X axis and margins take about 60 points above and below the rows.
	width, height := labelWidth+barsWidth+durWidth, rowHeight*vg.Length(len(rows))+60+legendSpace
	img := vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(dpi))
	dc := draw.New(img)
	p.Draw(draw.Crop(dc, labelWidth, -durWidth, legendSpace, -4))
	drawLegend(dc, rows, labelWidth, style)
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(out); err != nil {
		return fmt.Errorf("encoding PNG: %w", err)
	}
	return nil
}

// drawLegend lays the services out in one line under the X axis, where no bar can hide them.
func drawLegend(dc draw.Canvas, rows []row, x vg.Length, style text.Style) {
	var services []string
	for _, r := range rows {
		if !slices.Contains(services, r.Service) {
			services = append(services, r.Service)
		}
	}
	y := dc.Min.Y + legendSpace/2
	for _, s := range services {
		dc.FillPolygon(colorOf(s), rect(x, y-5, x+10, y+5))
		dc.FillText(style, vg.Point{X: x + 14, Y: y}, s)
		x += 14 + style.Width(s) + 18
	}
}
