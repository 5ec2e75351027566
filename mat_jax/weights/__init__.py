"""Official state_dict layout <-> Flax variable trees."""
