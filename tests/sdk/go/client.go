// A Go client of kopt-advisor made from the protos with Debian's protoc-gen-go and
// protoc-gen-go-grpc (see proto/buf.gen.yaml). tests/sdk/sdk_clients.py compiles it
// offline in GOPATH mode against Debian's Go packages and runs it against a live
// advisor; it prints what it got as JSON, the same shape as the Python and
// TypeScript clients, so the test can check all three against the seeded data.
//
// usage: client HOST:PORT API_KEY CLUSTER
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	koptv1 "github.com/kopt/kopt/gen/go/kopt/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

type container struct {
	Container         string  `json:"container"`
	CurrentCPU        float64 `json:"current_cpu"`
	CurrentMemory     string  `json:"current_memory"`
	RecommendedCPU    float64 `json:"recommended_cpu"`
	RecommendedMemory string  `json:"recommended_memory"`
}

type recommendation struct {
	Namespace  string      `json:"namespace"`
	Kind       int32       `json:"kind"`
	Name       string      `json:"name"`
	Idle       bool        `json:"idle"`
	AnalysisID string      `json:"analysis_id"`
	Containers []container `json:"containers"`
}

type report struct {
	Recommendations []recommendation `json:"recommendations"`
	TotalSize       uint32           `json:"total_size"`
	NotFoundCode    uint32           `json:"not_found_code"`
	NoKeyCode       uint32           `json:"no_key_code"`
}

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: client HOST:PORT API_KEY CLUSTER")
		os.Exit(2)
	}
	target, key, cluster := os.Args[1], os.Args[2], os.Args[3]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Plaintext: the test's advisor runs with --insecure on loopback.
	conn, err := grpc.DialContext(ctx, target, grpc.WithInsecure(), grpc.WithBlock())
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		os.Exit(1)
	}
	defer conn.Close()
	client := koptv1.NewAdvisorClient(conn)
	authed := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)

	resp, err := client.ListRecommendations(authed, &koptv1.ListRecommendationsRequest{
		Cluster: cluster,
		Order:   koptv1.RecommendationOrder_RECOMMENDATION_ORDER_NAME_ASC,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ListRecommendations:", err)
		os.Exit(1)
	}
	out := report{TotalSize: resp.GetTotalSize(), Recommendations: []recommendation{}}
	for _, r := range resp.GetRecommendations() {
		rec := recommendation{
			Namespace:  r.GetWorkload().GetNamespace(),
			Kind:       int32(r.GetWorkload().GetKind()),
			Name:       r.GetWorkload().GetName(),
			Idle:       r.GetIdle(),
			AnalysisID: r.GetAnalysisId(),
			Containers: []container{},
		}
		for _, c := range r.GetContainers() {
			rec.Containers = append(rec.Containers, container{
				Container:         c.GetContainer(),
				CurrentCPU:        c.GetCurrent().GetCpuRequestCores(),
				CurrentMemory:     strconv.FormatUint(c.GetCurrent().GetMemoryRequestBytes(), 10),
				RecommendedCPU:    c.GetRecommended().GetCpuRequestCores(),
				RecommendedMemory: strconv.FormatUint(c.GetRecommended().GetMemoryRequestBytes(), 10),
			})
		}
		out.Recommendations = append(out.Recommendations, rec)
	}

	_, err = client.GetRecommendation(authed, &koptv1.GetRecommendationRequest{
		Cluster: cluster, Namespace: "nowhere",
		Kind: koptv1.WorkloadKind_WORKLOAD_KIND_DEPLOYMENT, Name: "missing",
	})
	out.NotFoundCode = uint32(status.Code(err))
	_, err = client.ListRecommendations(ctx, &koptv1.ListRecommendationsRequest{Cluster: cluster})
	out.NoKeyCode = uint32(status.Code(err))

	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "encode:", err)
		os.Exit(1)
	}
}
