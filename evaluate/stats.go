package evaluate

import "math"

// z95 is the standard normal quantile of a two-sided 95% interval.
const z95 = 1.959963984540054

// Accuracy is a proportion of correct samples with its 95% Wilson score
// interval.
type Accuracy struct {
	Correct int     `json:"correct"`
	Total   int     `json:"total"`
	Value   float64 `json:"accuracy"`
	Low     float64 `json:"ci95_low"`
	High    float64 `json:"ci95_high"`
}

// NewAccuracy returns correct/total with its Wilson interval (Wilson 1927),
// which unlike the normal approximation stays inside [0,1] and behaves at
// 0% and 100%.
func NewAccuracy(correct, total int) Accuracy {
	a := Accuracy{Correct: correct, Total: total}
	if total <= 0 {
		return a
	}
	n, p := float64(total), float64(correct)/float64(total)
	z2 := z95 * z95
	center := (p + z2/(2*n)) / (1 + z2/n)
	half := z95 / (1 + z2/n) * math.Sqrt(p*(1-p)/n+z2/(4*n*n))
	a.Value = p
	a.Low = max(0, center-half)
	a.High = min(1, center+half)
	return a
}
