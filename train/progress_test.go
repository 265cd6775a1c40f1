package train

import (
	"context"
	"testing"
)

// TestProgressCallback checks what RunOptions.Progress receives: one report
// per weight update with the step counting up by one, and one per pass
// carrying the pass's metrics, which are those of the summary.
func TestProgressCallback(t *testing.T) {
	data := synthData(100, 1, 8, 8, 4, 3) // 4 batches of 32, the last short
	cfg := smallConfig(Free)
	cfg.Epochs = 4 // 2 passes of 2 replays
	tr := newTrainer(t, tinyBNNet(1, 8, 8, 4, 5), data, nil, cfg)
	var (
		steps    []Progress
		finished []EpochStats
	)
	sum, err := tr.Run(context.Background(), RunOptions{Progress: func(p Progress) {
		if p.Finished != nil {
			finished = append(finished, *p.Finished)
			return
		}
		steps = append(steps, p)
	}})
	if err != nil {
		t.Fatal(err)
	}
	total := tr.TotalSteps()
	if total != 2*4*2 || len(steps) != total {
		t.Fatalf("%d step reports of %d steps, want 16", len(steps), total)
	}
	for i, p := range steps {
		wantPass := 1 + i/(total/2)
		if p.Step != i+1 || p.TotalSteps != total || p.Pass != wantPass || p.Passes != 2 {
			t.Errorf("report %d: step %d/%d pass %d/%d; want step %d/%d pass %d/2", i, p.Step, p.TotalSteps, p.Pass, p.Passes, i+1, total, wantPass)
		}
		if p.Loss <= 0 || p.Accuracy < 0 || p.Accuracy > 1 || p.ImagesPerSec <= 0 {
			t.Errorf("report %d: loss %v, accuracy %v, %v images/s", i, p.Loss, p.Accuracy, p.ImagesPerSec)
		}
	}
	if len(finished) != 2 {
		t.Fatalf("%d pass reports, want 2", len(finished))
	}
	for i, s := range finished {
		if s.Pass != i+1 || s.Loss != sum.Epochs[i].Loss || s.Step != sum.Epochs[i].Step {
			t.Errorf("pass report %d: %+v, summary %+v", i, s, sum.Epochs[i])
		}
	}
	// The last step report of a pass shows the running means the pass's
	// metrics end with.
	if last := steps[total/2-1]; last.Loss != finished[0].Loss || last.Accuracy != finished[0].Accuracy {
		t.Errorf("pass 1's last step report: loss %v acc %v; pass 1: loss %v acc %v", last.Loss, last.Accuracy, finished[0].Loss, finished[0].Accuracy)
	}
}
