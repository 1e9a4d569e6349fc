"""placeholder"""


class LBFGS: ...
