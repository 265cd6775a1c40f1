package evaluate

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/robust-go/robust/attacks"
)

// TestReproduction checks that a report records the suite with every
// setting: each attack decoded from the report equals the one that ran,
// and the same configuration gives the same numbers.
func TestReproduction(t *testing.T) {
	m, d := tinyModel(t)
	suite, err := Suite("autoattack-plus", SuiteOptions{Steps: 5, Queries: 50})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Eps: []Eps{{Value: 0.05, Text: "0.05"}}, Norm: attacks.Linf, Attacks: suite, BatchSize: 10, Seed: 3,
		Reproduction: &Reproduction{Robust: "test", ModelSHA256: "x", Data: "tiny", Selection: "first 32 of 32"}}
	r, err := Run(context.Background(), m, d, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rep := r.Reproduction
	if rep == nil || rep.Seed != 3 || rep.Norm != "linf" || len(rep.Eps) != 1 || rep.Robust != "test" || len(rep.Attacks) != len(suite) {
		t.Fatalf("reproduction %+v", rep)
	}
	for i, a := range suite {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(rep.Attacks[i].Settings, &fields); err != nil {
			t.Fatal(err)
		}
		got := reflect.New(reflect.TypeOf(a)).Elem()
		for k := range got.NumField() {
			f := got.Type().Field(k)
			raw, ok := fields[snakeCase(f.Name)]
			if !ok {
				t.Errorf("attack %d: setting %s not recorded in %s", i, f.Name, rep.Attacks[i].Settings)
				continue
			}
			if err := json.Unmarshal(raw, got.Field(k).Addr().Interface()); err != nil {
				t.Fatal(err)
			}
		}
		if !reflect.DeepEqual(got.Interface(), a) || rep.Attacks[i].Label != a.String() {
			t.Errorf("attack %d: recorded %s %s, ran %#v", i, rep.Attacks[i].Label, rep.Attacks[i].Settings, a)
		}
	}
	again, err := Run(context.Background(), m, d, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range r.Points {
		for j, a := range p.Attacks {
			if b := again.Points[i].Attacks[j]; a.Broken != b.Broken || a.Queries != b.Queries {
				t.Errorf("%s: broken %d then %d, queries %d then %d", a.Name, a.Broken, b.Broken, a.Queries, b.Queries)
			}
		}
	}
}
