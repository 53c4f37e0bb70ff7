"""Development tools, never imported by a service: the test kit (`testing`) and the AsyncAPI generator (`asyncapi`)."""
