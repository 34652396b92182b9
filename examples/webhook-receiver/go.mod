module github.com/prost-platform/prost/examples/webhook-receiver

go 1.26.0
