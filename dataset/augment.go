package dataset

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
)

// RandomResizedCrop's defaults in torchvision: the crop covers 8–100 % of
// the image's area, with an aspect ratio (width/height) in [3/4, 4/3],
// drawn log-uniformly.
const (
	rrcMinScale = 0.08
	rrcMaxScale = 1.0
	rrcMinRatio = 3.0 / 4
	rrcMaxRatio = 4.0 / 3
)

// randomResizedCropParams draws the crop window (top i, left j, height h,
// width w) of torchvision 0.14's RandomResizedCrop.get_params for a
// width×height image: up to ten tries of a random area and aspect ratio
// that fit, then a fallback to the largest centered crop within the ratio
// range. The random numbers come from src, not torch's generator: the
// distribution is torchvision's, the individual draws are not.
func randomResizedCropParams(width, height int, src rand.Source) (i, j, h, w int) {
	area := float64(width * height)
	logLo, logHi := math.Log(rrcMinRatio), math.Log(rrcMaxRatio)
	for range 10 {
		target := area * uniform(src, rrcMinScale, rrcMaxScale)
		ratio := math.Exp(uniform(src, logLo, logHi))
		w = int(math.RoundToEven(math.Sqrt(target * ratio)))
		h = int(math.RoundToEven(math.Sqrt(target / ratio)))
		if w > 0 && w <= width && h > 0 && h <= height {
			i = int(uintn(src, uint64(height-h+1)))
			j = int(uintn(src, uint64(width-w+1)))
			return i, j, h, w
		}
	}
	inRatio := float64(width) / float64(height)
	switch {
	case inRatio < rrcMinRatio:
		w, h = width, int(math.RoundToEven(float64(width)/rrcMinRatio))
	case inRatio > rrcMaxRatio:
		h, w = height, int(math.RoundToEven(float64(height)*rrcMaxRatio))
	default:
		w, h = width, height
	}
	return (height - h) / 2, (width - w) / 2, h, w
}

// AugmentForms documents the augmentation specs [ParseAugment] accepts.
const AugmentForms = "none | a comma list of crop:P, flip, random-resized-crop:N"

// ParseAugment reads an augmentation spec: "none" (or ""), or a comma list
// of crop:P (pad P pixels with zeros and crop back at random, CIFAR-style),
// flip (mirror half the images) and random-resized-crop:N (torchvision's
// RandomResizedCrop to N×N, for streamed image folders), e.g. "crop:4,flip"
// or "random-resized-crop:224,flip".
func ParseAugment(s string) (Augment, error) {
	var a Augment
	if s == "none" || s == "" {
		return a, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		name, arg, _ := strings.Cut(strings.TrimSpace(part), ":")
		switch name {
		case "flip":
			a.Flip = true
		case "crop":
			p, err := strconv.Atoi(arg)
			if err != nil || p < 1 {
				return a, fmt.Errorf("dataset: augmentation crop:%s: want crop:P with P ≥ 1 pixels of padding", arg)
			}
			a.Pad = p
		case "random-resized-crop":
			n, err := strconv.Atoi(arg)
			if err != nil || n < 1 {
				return a, fmt.Errorf("dataset: augmentation random-resized-crop:%s: want random-resized-crop:N with N ≥ 1 pixels", arg)
			}
			a.ResizedCrop = n
		default:
			return a, fmt.Errorf("dataset: unknown augmentation %q (want %s)", part, AugmentForms)
		}
	}
	if a.Pad > 0 && a.ResizedCrop > 0 {
		return a, fmt.Errorf("dataset: augmentation %q: crop:P and random-resized-crop:N exclude each other", s)
	}
	return a, nil
}
