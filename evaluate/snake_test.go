package evaluate

import "testing"

func TestSnakeCase(t *testing.T) {
	for in, want := range map[string]string{
		"StepRatio": "step_ratio", "EoT": "eot", "AlphaMax": "alpha_max", "Loss": "loss",
		"TargetClasses": "target_classes", "NoEarlyStop": "no_early_stop", "LargeEps": "large_eps", "PInit": "p_init",
	} {
		if got := snakeCase(in); got != want {
			t.Errorf("snakeCase(%q) = %q, want %q", in, got, want)
		}
	}
}
