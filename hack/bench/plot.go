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

package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// spreadXYs are medians with their min-max spread, for a line with error bars.
type spreadXYs struct {
	x []float64
	s []Summary
}

func (p spreadXYs) Len() int                    { return len(p.x) }
func (p spreadXYs) XY(i int) (float64, float64) { return p.x[i], p.s[i].Median }
func (p spreadXYs) YError(i int) (float64, float64) {
	return p.s[i].Median - p.s[i].Min, p.s[i].Max - p.s[i].Median
}

// plotStatusLatency draws P2: p50 and p99 of the facade and of the bare handler against the
// offered load, on a log scale, with the spread of the runs as error bars.
func plotStatusLatency(path string, r *Results) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Status poll latency (%d run(s): median, bars min–max)", r.Runs)
	p.X.Label.Text = "offered load (polls/s, constant rate)"
	p.Y.Label.Text = "latency (ms, log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Legend.Top = true
	p.Legend.Left = true

	var xs []float64
	var ticks []plot.Tick
	low, high := math.Inf(1), 0.0
	for _, pt := range r.StatusLatency {
		xs = append(xs, pt.Rate)
		ticks = append(ticks, plot.Tick{Value: pt.Rate, Label: fmt.Sprintf("%.0f", pt.Rate)})
		for _, s := range []Summary{pt.FacadeP50, pt.FacadeP99, pt.BareP50, pt.BareP99} {
			low, high = math.Min(low, s.Min), math.Max(high, s.Max)
		}
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.X.Min, p.X.Max = 0, xs[len(xs)-1]*1.05
	p.Y.Min = math.Pow(10, math.Floor(math.Log10(low)))
	// A decade of headroom above the data keeps the legend clear of it.
	p.Y.Max = 10 * math.Max(10, math.Pow(10, math.Ceil(math.Log10(high))))
	var yTicks []plot.Tick
	for decade := p.Y.Min; decade < p.Y.Max*1.01; decade *= 10 {
		for _, m := range []float64{1, 2, 5} {
			if v := decade * m; v <= p.Y.Max*1.01 {
				yTicks = append(yTicks, plot.Tick{Value: v, Label: trimFloat(v)})
			}
		}
	}
	p.Y.Tick.Marker = plot.ConstantTicks(yTicks)
	p.Add(plotter.NewGrid())

	red := color.RGBA{R: 200, G: 40, B: 40, A: 255}
	blue := color.RGBA{R: 40, G: 90, B: 200, A: 255}
	series := []struct {
		name   string
		pick   func(LatencyPoint) Summary
		color  color.Color
		dashed bool
		shape  draw.GlyphDrawer
	}{
		{"facade p99", func(p LatencyPoint) Summary { return p.FacadeP99 }, red, false, draw.CircleGlyph{}},
		{"facade p50", func(p LatencyPoint) Summary { return p.FacadeP50 }, red, true, draw.CircleGlyph{}},
		{"bare net/http p99", func(p LatencyPoint) Summary { return p.BareP99 }, blue, false, draw.SquareGlyph{}},
		{"bare net/http p50", func(p LatencyPoint) Summary { return p.BareP50 }, blue, true, draw.SquareGlyph{}},
	}
	for _, s := range series {
		data := spreadXYs{x: xs}
		for _, pt := range r.StatusLatency {
			data.s = append(data.s, s.pick(pt))
		}
		line, points, err := plotter.NewLinePoints(data)
		if err != nil {
			return err
		}
		line.Color, points.Color, points.Shape = s.color, s.color, s.shape
		line.Width = vg.Points(1.5)
		if s.dashed {
			line.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		bars, err := plotter.NewYErrorBars(data)
		if err != nil {
			return err
		}
		bars.Color = s.color
		p.Add(line, points, bars)
		p.Legend.Add(s.name, line, points)
	}
	goal := plotter.NewFunction(func(float64) float64 { return 5 })
	goal.Color = color.Gray{Y: 120}
	goal.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
	goal.XMin, goal.XMax = 0, p.X.Max
	p.Add(goal)
	p.Legend.Add("goal: p99 ≤ 5 ms at 2,000/s", goal)

	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return p.Save(18*vg.Centimeter, 11*vg.Centimeter, path)
}

func trimFloat(v float64) string {
	return fmt.Sprint(math.Round(v*1000) / 1000)
}
