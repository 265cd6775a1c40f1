package evaluate_test

import (
	"fmt"

	"github.com/robust-go/robust/evaluate"
)

func ExampleParseEps() {
	eps, err := evaluate.ParseEps("2/255,4/255,0.03")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range eps {
		fmt.Printf("%s = %.4f\n", e.Text, e.Value)
	}
	// Output:
	// 2/255 = 0.0078
	// 4/255 = 0.0157
	// 0.03 = 0.0300
}

func ExampleNewAccuracy() {
	a := evaluate.NewAccuracy(412, 1000)
	fmt.Printf("%.1f%% [%.1f, %.1f]\n", 100*a.Value, 100*a.Low, 100*a.High)
	// Output: 41.2% [38.2, 44.3]
}

func ExampleSuite() {
	suite, err := evaluate.Suite("default", evaluate.SuiteOptions{Restarts: 5})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, a := range suite {
		fmt.Printf("%-8s %s\n", a.Name(), a)
	}
	// Output:
	// fgsm     FGSM CE
	// pgd      PGD-20 CE ×5 (α=ε/4)
	// apgd-ce  APGD-CE 100 steps ×5
}

func ExampleReport_CheckGates() {
	report := &evaluate.Report{Mode: "cascade",
		Clean: evaluate.NewAccuracy(850, 1000),
		Points: []evaluate.Point{{EpsText: "0.1", Eps: 0.1, Robust: evaluate.NewAccuracy(380, 1000),
			Attacks: []evaluate.AttackResult{{Name: "pgd", Attacked: 850, Robust: evaluate.NewAccuracy(412, 1000)}}}},
	}
	gates, err := evaluate.ParseGates("pgd=40%,clean=80%,robust=40%")
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := report.CheckGates(gates); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(report.GateFailure())
	// Output: gate missed: robust 38.0% < 40.0% at ε=0.1
}
