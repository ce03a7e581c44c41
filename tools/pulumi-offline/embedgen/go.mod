module envoy-thanos/pulumi-offline/embedgen

go 1.26
