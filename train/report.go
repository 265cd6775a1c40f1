package train

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// eventLog writes JSON lines; a nil writer discards them.
type eventLog struct {
	enc *json.Encoder
	err error // the first write error; later events are dropped
}

// LogSchema identifies the format of the run log's JSON lines; every line
// carries it. It changes when fields change meaning or go away.
const LogSchema = "robust.train.log/v1"

func newEventLog(w io.Writer) *eventLog {
	if w == nil {
		return &eventLog{}
	}
	return &eventLog{enc: json.NewEncoder(w)}
}

// write logs one event with the current time.
func (l *eventLog) write(fields map[string]any) {
	if l.enc == nil || l.err != nil {
		return
	}
	fields["schema"] = LogSchema
	fields["time"] = time.Now().UTC().Format(time.RFC3339)
	l.err = l.enc.Encode(fields)
}

// progress is the progress bar of a run; a nil *progress shows nothing.
type progress struct {
	w      io.Writer
	bar    *progressbar.ProgressBar
	passes int
}

func newProgress(w io.Writer, total, done, passes int) *progress {
	if w == nil {
		return nil
	}
	bar := progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetWidth(24),
		progressbar.OptionShowCount(),
		progressbar.OptionSetItsString("steps"),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionFullWidth(),
	)
	_ = bar.Set(done)
	return &progress{w: w, bar: bar, passes: passes}
}

// update shows the progress after a step.
func (p *progress) update(st state) {
	if p == nil {
		return
	}
	if st.Seen > 0 {
		p.bar.Describe(fmt.Sprintf("pass %d/%d loss %.3f acc %5.1f%% %5.0f img/s",
			st.Iter.Epoch+1, p.passes, st.LossSum/float64(st.Seen),
			100*float64(st.Correct)/float64(st.Seen), float64(st.Seen)/max(st.Seconds, 1e-9)))
	}
	_ = p.bar.Set(st.Step)
}

// passDone prints a pass's metrics above the bar.
func (p *progress) passDone(s EpochStats) {
	if p == nil {
		return
	}
	_ = p.bar.Clear()
	fmt.Fprintln(p.w, s.String())
}

// finish ends the bar's line.
func (p *progress) finish() {
	if p == nil {
		return
	}
	_ = p.bar.Exit()
	fmt.Fprintln(p.w)
}

// String formats the metrics on one line.
func (s EpochStats) String() string {
	line := fmt.Sprintf("pass %d/%d (step %d", s.Pass, s.Passes, s.Step)
	if s.EpochEquivalents != s.Pass {
		line += fmt.Sprintf(", %d epoch-equivalents", s.EpochEquivalents)
	}
	line += fmt.Sprintf("): loss %.4f, train accuracy %.2f%%, %.0f images/s", s.Loss, 100*s.Accuracy, s.ImagesPerSec)
	if s.OverfitCheck != nil {
		line += fmt.Sprintf(", overfitting check %.1f%%", 100**s.OverfitCheck)
	}
	if s.HeldoutClean != nil {
		line += fmt.Sprintf("; held-out clean %.2f%%", 100**s.HeldoutClean)
	}
	if s.HeldoutPGD != nil {
		line += fmt.Sprintf(", PGD %.2f%%", 100**s.HeldoutPGD)
	}
	return line
}
