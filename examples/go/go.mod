module github.com/astack-dev/astack/examples/go

go 1.26.0

require github.com/astack-dev/astack/bindings/go v0.0.0

replace github.com/astack-dev/astack/bindings/go => ../../bindings/go
