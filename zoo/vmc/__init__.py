"""Variational Monte Carlo: energy and gradient estimators, SR, the step."""

from zoo.vmc.estimators import (EnergyStats, Estimate, RealCoordinates,
                                energy_gradient, energy_stats,
                                expect_and_grad)
from zoo.vmc.sr import (SOLVERS, SRProblem, centred_jacobian, centred_matvec,
                        make_sr_problem, natural_gradient,
                         stochastic_reconfiguration)
from zoo.vmc.train import (CLIP_AT, OPTIMIZERS, PRECONDITIONERS, SCHEDULES,
                           BudgetSchedule, ElapsedState, SRConfig,
                           elapsed_seconds, set_elapsed, StepStats,
                           TrainState, VMC, make_evaluate, make_optimizer,
                           make_schedule, make_temperature, make_vmc)
