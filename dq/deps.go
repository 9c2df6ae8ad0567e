package dq

import (
	_ "github.com/beanstalkd/go-beanstalk"
	_ "github.com/redis/go-redis/v9"
	_ "github.com/zeromicro/go-zero/core/service"
	_ "github.com/zeromicro/go-zero/core/stores/redis"
)

import (
	_ "github.com/stretchr/testify/require"
	_ "go.uber.org/goleak"
)
