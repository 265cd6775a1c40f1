package train

// Progress is how far a run is: [RunOptions].Progress receives one after
// every weight update and one at the end of every pass.
type Progress struct {
	Step, TotalSteps int // weight updates done, and in the whole run
	Pass, Passes     int // the current pass, from 1, and the run's passes
	// Loss, Accuracy and ImagesPerSec are the running means of the
	// current pass (zero before its first step).
	Loss, Accuracy, ImagesPerSec float64
	// Finished holds the metrics of the pass that has just ended; it is
	// nil after a weight update.
	Finished *EpochStats
}

// progress reports the run's position to RunOptions.Progress.
func (r *runner) progress(finished *EpochStats) {
	if r.opts.Progress == nil {
		return
	}
	p := Progress{
		Step: r.st.Step, TotalSteps: r.TotalSteps(), Pass: r.st.Iter.Epoch + 1, Passes: r.cfg.Passes(),
		Finished: finished,
	}
	if finished != nil {
		p.Pass = finished.Pass
	}
	if r.st.Seen > 0 {
		p.Loss = r.st.LossSum / float64(r.st.Seen)
		p.Accuracy = float64(r.st.Correct) / float64(r.st.Seen)
		p.ImagesPerSec = float64(r.st.Seen) / max(r.st.Seconds, 1e-9)
	}
	r.opts.Progress(p)
}
