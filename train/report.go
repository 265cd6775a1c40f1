package train

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
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
