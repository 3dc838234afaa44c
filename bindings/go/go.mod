module github.com/astack-dev/astack/bindings/go

go 1.26.0

require (
	github.com/golang-jwt/jwt/v5 v5.3.1
	golang.org/x/time v0.16.0
)
