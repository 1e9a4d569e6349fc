"""A character-level GRU language model in the style of the classic char-rnn PyTorch tutorial:
``string.printable`` as the alphabet, ``torch.autograd.Variable`` around the inputs (old code),
``hidden`` passed between steps, one ``loss += criterion(...)`` per character, and sampling with
``output.data.view(-1).div(temperature).exp()`` and ``torch.multinomial``."""

import random
import string

import torch
import torch.nn as nn
from torch.autograd import Variable

all_characters = string.printable
n_characters = len(all_characters)
TEXT = "the quick brown fox jumps over the lazy dog. " * 6


def char_tensor(s):
    tensor = torch.zeros(len(s)).long()
    for c in range(len(s)):
        tensor[c] = all_characters.index(s[c])
    return Variable(tensor)


class CharRNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size, n_layers=1):
        super(CharRNN, self).__init__()
        self.hidden_size = hidden_size
        self.n_layers = n_layers
        self.encoder = nn.Embedding(input_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, n_layers)
        self.decoder = nn.Linear(hidden_size, output_size)

    def forward(self, input, hidden):
        input = self.encoder(input.view(1, -1))
        output, hidden = self.gru(input.view(1, 1, -1), hidden)
        output = self.decoder(output.view(1, -1))
        return output, hidden

    def init_hidden(self):
        return Variable(torch.zeros(self.n_layers, 1, self.hidden_size))


def random_training_set(rng, chunk_len=12):
    start_index = rng.randint(0, len(TEXT) - chunk_len - 1)
    chunk = TEXT[start_index : start_index + chunk_len + 1]
    return char_tensor(chunk[:-1]), char_tensor(chunk[1:])


def evaluate(decoder, prime_str="th", predict_len=20, temperature=0.8):
    hidden = decoder.init_hidden()
    prime_input = char_tensor(prime_str)
    predicted = prime_str
    for p in range(len(prime_str) - 1):
        _, hidden = decoder(prime_input[p], hidden)
    inp = prime_input[-1]
    for p in range(predict_len):
        output, hidden = decoder(inp, hidden)
        output_dist = output.data.view(-1).div(temperature).exp()
        top_i = torch.multinomial(output_dist, 1)[0]
        predicted_char = all_characters[top_i]
        predicted += predicted_char
        inp = char_tensor(predicted_char)
    return predicted


def build():
    return CharRNN(n_characters, 32, n_characters)


def train(decoder, stochastic=False):
    rng = random.Random(11)
    decoder_optimizer = torch.optim.Adam(decoder.parameters(), lr=0.01)
    criterion = nn.CrossEntropyLoss()
    for epoch in range(1, 41):
        inp, target = random_training_set(rng)
        hidden = decoder.init_hidden()
        decoder.zero_grad()
        loss = 0
        for c in range(12):
            output, hidden = decoder(inp[c], hidden)
            loss += criterion(output, target[c].unsqueeze(0))
        loss.backward()
        decoder_optimizer.step()
        last = loss.item() / 12
    if stochastic:
        sample = evaluate(decoder)
        assert len(sample) == 22 and all(ch in all_characters for ch in sample)
        print(sample)
    return last
