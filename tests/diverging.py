"""A trainer whose chosen runs diverge: how the trainers' NaN handling is tested."""


def diverging(trainer_class, init_seeds):
    """A subclass of `trainer_class` whose runs of `init_seeds` train with a learning
    rate of 1e30, so their weights blow up after the first step (the other runs
    train as usual: `_reinitialize` restores the learning rate first)."""

    class Diverging(trainer_class):
        def _reinitialize(self, init_seed):
            super()._reinitialize(init_seed)
            if init_seed in init_seeds:
                self.optimizer.learning_rate.assign(1e30)

    return Diverging
